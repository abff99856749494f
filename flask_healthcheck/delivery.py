"""Delivery of the signals of :mod:`flask_healthcheck.signals`: in the
order their runs finished, on a thread of the app's own, so a slow or
hanging subscriber never holds up a probe's answer or the background
refresh, and the last word a subscriber got about a check matches that
check's latest status.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from blinker import NamedSignal

from .reentry import inside
from .threads import Condition, allocate_lock, get_ident, start_thread

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger("flask_healthcheck")

#: Seconds one subscriber call may run before it is left to itself: later
#: deliveries go on on a new thread, and that subscriber is skipped until
#: its call returns, so one hung subscriber can't silence the others.
STUCK_SECONDS = 10.0

#: Threads left behind with a hung call, at the most; past that, deliveries
#: wait for one of them to return.
MAX_STUCK_THREADS = 16

#: Deliveries kept waiting at the most; the oldest are dropped past that.
MAX_PENDING = 10_000

#: Seconds the delivery thread waits for work before it exits (the next
#: signal starts another).
IDLE_SECONDS = 60.0

Receiver = Callable[..., Any]


class Send:
    """One signal to its subscribers (or to ``receivers``, what is left of
    it after a subscriber hung), delivered one subscriber at a time."""

    __slots__ = ("signal", "app", "kwargs", "receivers")

    def __init__(
        self,
        signal: NamedSignal,
        app: Flask,
        receivers: list[Receiver] | None = None,
        **kwargs: Any,
    ) -> None:
        self.signal = signal
        self.app = app
        self.kwargs = kwargs
        self.receivers = receivers

    def call(self, receiver: Receiver) -> None:
        """Call one subscriber: whatever it raises (``BaseException``
        included) is logged and changes nothing for the others."""
        try:
            receiver(self.app, **self.kwargs)
        except BaseException:
            logger.exception("A subscriber of the %r signal raised.", self.signal.name)


#: What the delivery thread runs, in order: a signal, or one log line.
Delivery = Send | Callable[[], None]


class SignalDispatcher:
    """Delivers one app's signals in the order they were queued, on a
    thread of its own (the operating system's, also under gevent), so a
    slow or hanging subscriber never holds up a probe's answer or the
    background refresh.

    A thread that can't be started (the process is at its limit) delays
    delivery, never ends it: the deliveries wait, and the next
    :meth:`put` or :meth:`wait` tries again.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._reset()

    def _reset(self) -> None:
        self._lock = allocate_lock()
        self._changed = Condition(self._lock)
        self._pending: deque[Delivery] = deque()
        #: Deliveries queued and finished so far; ``wait`` compares them.
        self._queued = 0
        self._done = 0
        #: The thread delivering (a token it knows itself by), its id once
        #: it runs, what it calls now and since when.
        self._thread: object | None = None
        self._ident: int | None = None
        self._current: tuple[Delivery, list[Receiver], object] | None = None
        self._busy_since: float | None = None
        #: Calls left behind, hung; a subscriber among them is skipped.
        self._hung: list[object] = []
        #: What each skipped subscriber missed meanwhile: the latest signal
        #: per check (and of health_changed), delivered when its call returns,
        #: so its last word matches each check's latest status.
        self._missed: dict[tuple[int, int], dict[object, Send]] = {}
        #: Set while no thread could be started: logged once, until one is.
        self._start_failed = False
        #: Set by :meth:`close`: the thread exits once nothing is pending.
        self._closed = False

    def after_fork_in_child(self) -> None:
        """Forget the parent's deliveries: a child never alerts from them."""
        self._reset()

    def close(self) -> None:
        """Let the delivery thread exit as soon as it is idle, instead of
        after :data:`IDLE_SECONDS`: its app is gone.

        Safe in a finalizer or a weakref callback: it never waits for a lock
        (if the lock is busy, whoever holds it is not idle waiting, and the
        thread sees the flag next time it looks).
        """
        self._closed = True
        if self._lock.acquire(False):
            try:
                self._changed.notify_all()
            finally:
                self._lock.release()

    def put(self, deliveries: list[Delivery]) -> int:
        """Queue ``deliveries``; returns a number to :meth:`wait` for."""
        if not deliveries:
            return self._queued
        with self._lock:
            self._pending.extend(deliveries)
            self._queued += len(deliveries)
            dropped = len(self._pending) - MAX_PENDING
            for _ in range(max(dropped, 0)):
                self._pending.popleft()
                self._done += 1
            left_behind = self._leave_stuck_call()
            failure = self._ensure_thread()
            self._changed.notify_all()
            number = self._queued
        if dropped > 0:
            logger.error(
                "Health signals are not being delivered (do subscribers hang?);"
                " dropped the %d oldest.",
                dropped,
            )
        _log_left_behind(left_behind)
        _log_start_failure(failure)
        return number

    def wait(self, number: int, timeout: float) -> bool:
        """Wait until the deliveries up to ``number`` are done; False if
        they are not after ``timeout`` seconds. A subscriber call that hangs
        meanwhile is left behind after :data:`STUCK_SECONDS`."""
        if self._ident == get_ident() and self._thread is not None:
            return False  # a subscriber that runs checks can't wait for itself
        deadline = time.monotonic() + timeout
        left_behind: object = None
        with self._changed:
            failure = self._ensure_thread()
            while self._done < number:
                now = time.monotonic()
                if now >= deadline:
                    break
                left_behind = self._leave_stuck_call() or left_behind
                failure = self._ensure_thread() or failure
                wake = deadline
                if self._busy_since is not None:
                    wake = min(wake, self._busy_since + STUCK_SECONDS + 0.01)
                self._changed.wait(max(wake - now, 0.001))
            done = self._done >= number
        _log_left_behind(left_behind)
        _log_start_failure(failure)
        return done

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered."""
        return self.wait(self._queued, timeout)

    def _leave_stuck_call(self) -> object:
        """Under the lock: if the current call has run too long, leave its
        thread to it and go on on a new one. Returns what was left behind."""
        busy = self._busy_since
        if (
            busy is None
            or self._current is None
            or time.monotonic() - busy <= STUCK_SECONDS
            or len(self._hung) >= MAX_STUCK_THREADS
        ):
            return None
        delivery, rest, hung = self._current
        self._hung.append(hung)
        if rest and isinstance(delivery, Send):
            # The subscribers after the hung one still get this signal, first.
            remainder = Send(delivery.signal, delivery.app, rest, **delivery.kwargs)
            self._pending.appendleft(remainder)
            self._queued += 1
        self._done += 1  # nobody waits for the hung call forever
        self._current = None
        self._busy_since = None
        self._thread = self._ident = None  # the caller starts another
        self._changed.notify_all()
        return hung

    def _ensure_thread(self) -> Exception | None:
        """Under the lock: start a delivery thread unless one runs or
        nothing waits. Returns the error to log, the first time in a row
        that no thread could be started."""
        if self._thread is not None or not self._pending:
            return None
        token = self._thread = object()
        try:
            start_thread(
                partial(self._deliver, token), f"healthcheck-signals-{self._name}"
            )
        except Exception as e:  # "can't start new thread": a pids limit, say
            self._thread = None
            first, self._start_failed = not self._start_failed, True
            return e if first else None
        self._start_failed = False
        return None

    def _deliver(self, me: object) -> None:
        # A subscriber that asks for a health run gets the latest results,
        # not a new run (which would send its signal again, without end).
        inside.set(("subscriber", None))
        with self._lock:
            if self._thread is me:
                self._ident = get_ident()
        while True:
            with self._lock:
                idle_until = time.monotonic() + IDLE_SECONDS
                while not self._pending and self._thread is me:
                    left = idle_until - time.monotonic()
                    if left <= 0 or self._closed:
                        self._thread = self._ident = None
                        return
                    self._changed.wait(left)
                if self._thread is not me:
                    return
                delivery = self._pending.popleft()
            carry_on = self._deliver_one(me, delivery)
            del delivery  # idle, this thread must keep nothing of its app alive
            if not carry_on:
                return
            with self._lock:
                self._done += 1
                self._changed.notify_all()

    def _deliver_one(self, me: object, delivery: Delivery) -> bool:
        """Make one delivery; False if this thread was left behind meanwhile."""
        if isinstance(delivery, Send):
            receivers = delivery.receivers
            if receivers is None:
                receivers = list(delivery.signal.receivers_for(delivery.app))
            for index, receiver in enumerate(receivers):
                if not self._begin(delivery, receivers[index + 1 :], receiver):
                    continue
                delivery.call(receiver)
                if not self._end(me, receiver):
                    return False
        elif self._begin(delivery, [], delivery):
            try:
                delivery()
            except BaseException:  # a log handler that raises
                logger.exception("Delivering a health signal failed.")
            if not self._end(me, delivery):
                return False
        return True

    def _begin(self, delivery: Delivery, rest: list[Receiver], call: object) -> bool:
        """Note the call about to be made; False to skip a hung subscriber."""
        with self._lock:
            if _key(call) in map(_key, self._hung):
                if isinstance(delivery, Send) and (topic := _topic(delivery)):
                    missed = self._missed.setdefault(_key(call), {})
                    missed.pop(topic, None)  # the latest goes last
                    missed[topic] = delivery
                return False
            self._current = (delivery, rest, call)
            self._busy_since = time.monotonic()
            return True

    def _end(self, me: object, call: object) -> bool:
        """Note the call returned; False if this thread was left behind
        meanwhile: it then ends, and the subscriber, no longer skipped, gets
        next what it missed."""
        failure = None
        with self._lock:
            if self._thread is me:
                self._current = None
                self._busy_since = None
                return True
            keys = [_key(hung) for hung in self._hung]
            if _key(call) in keys:
                del self._hung[keys.index(_key(call))]
            missed = self._missed.pop(_key(call), {})
            if missed and callable(call):
                # Next in line, before anything newer reaches that subscriber.
                for delivery in reversed(missed.values()):
                    self._pending.appendleft(
                        Send(delivery.signal, delivery.app, [call], **delivery.kwargs)
                    )
                self._queued += len(missed)
                failure = self._ensure_thread()
                self._changed.notify_all()
        _log_start_failure(failure)
        return False


def _topic(delivery: Send) -> object:
    """What a later signal of the same kind makes stale: one check's
    failing or recovered, or the app's status; None for the rest."""
    name = delivery.signal.name
    if name in ("check-failed", "check-recovered"):
        result = delivery.kwargs.get("result")
        return ("check", getattr(result, "name", None))
    if name == "health-changed":
        return ("health",)
    return None


def _key(call: object) -> tuple[int, int]:
    """Who a call is: blinker hands out a new bound method object for each
    delivery, so a method is known by its object and function."""
    return id(getattr(call, "__self__", call)), id(getattr(call, "__func__", call))


def _log_start_failure(error: Exception | None) -> None:
    if error is not None:
        logger.error(
            "No thread could be started to deliver health signals (%s); they"
            " wait, and each new signal tries again.",
            error,
        )


def _log_left_behind(call: object) -> None:
    if call is not None:
        logger.error(
            "A health signal subscriber (%r) has run for more than %g s; it is"
            " skipped until it returns, and later signals go on on a new thread.",
            call,
            STUCK_SECONDS,
        )
