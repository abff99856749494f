"""Signals sent by the extension, so that alerting and metrics are
subscribers rather than code inside checks.

Every signal is sent with ``sender=`` the Flask app (the real object, not
the ``current_app`` proxy), so a subscriber can listen to one app only::

    from flask_healthcheck.signals import check_failed

    @check_failed.connect_via(app)
    def page_someone(app, result):
        ...

A subscriber that raises is logged on the ``flask_healthcheck`` logger and
changes nothing in the response or in the other subscribers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from blinker import NamedSignal, Namespace

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger("flask_healthcheck")

_signals = Namespace()

#: Sent every time a check fails (also a non-critical one). Sender: the app.
#: Keyword: ``result`` (:class:`~flask_healthcheck.CheckResult`).
check_failed = _signals.signal("check-failed")

#: Sent when a check no longer fails after its previous run failed.
#: Sender: the app. Keyword: ``result`` (:class:`~flask_healthcheck.CheckResult`).
check_recovered = _signals.signal("check-recovered")

#: Sent when the overall status differs from the previous run's with the same
#: selection of checks. Sender: the app. Keywords: ``report``
#: (:class:`~flask_healthcheck.HealthReport`) and ``previous`` (the previous
#: status, ``"pass"``, ``"warn"`` or ``"fail"``; ``None`` on an app's first
#: run, which counts as a change only when it does not pass).
health_changed = _signals.signal("health-changed")

#: Sent after every run, for exporters such as Prometheus gauges.
#: Sender: the app. Keyword: ``report`` (:class:`~flask_healthcheck.HealthReport`).
health_checked = _signals.signal("health-checked")


# -- delivery ------------------------------------------------------------------

#: What the delivery thread calls, in order: one signal sent to all its
#: subscribers, or one log record.
Delivery = Callable[[], None]

#: A subscriber call running longer than this (seconds) is left to itself:
#: later deliveries go on on a new thread, so one hung subscriber can't
#: silence every alert after it.
STUCK_SECONDS = 10.0

#: Threads left behind with a hung subscriber, at the most; past that,
#: deliveries wait for one of them.
MAX_STUCK_THREADS = 4

#: Deliveries kept waiting at the most; the oldest are dropped past that.
MAX_PENDING = 10_000


def send(signal: NamedSignal, app: Flask, **kwargs: Any) -> None:
    """Call each subscriber on its own: one that raises (``BaseException``
    included) is logged and changes nothing for the others."""
    for receiver in signal.receivers_for(app):
        try:
            receiver(app, **kwargs)
        except BaseException:
            logger.exception("A subscriber of the %r signal raised.", signal.name)


class SignalDispatcher:
    """Delivers one app's signals in the order they were queued, on a
    thread of its own, so a slow or hanging subscriber never holds up a
    probe's answer or the background refresh.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[Delivery] = deque()
        #: Deliveries queued and finished so far; ``wait`` compares them.
        self._queued = 0
        self._done = 0
        #: The thread delivering now, and since when it runs its current call.
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None
        self._stuck = 0

    def after_fork_in_child(self) -> None:
        """Forget the parent's deliveries: a child never alerts from them."""
        self._reset()

    def put(self, deliveries: list[Delivery]) -> int:
        """Queue ``deliveries``; returns a number to :meth:`wait` for."""
        if not deliveries:
            return self._queued
        with self._lock:
            self._pending.extend(deliveries)
            self._queued += len(deliveries)
            dropped = len(self._pending) - MAX_PENDING
            if dropped > 0:
                for _ in range(dropped):
                    self._pending.popleft()
                self._done += dropped
                logger.error(
                    "Health signals are not being delivered (is a subscriber"
                    " hung?); dropped the %d oldest.",
                    dropped,
                )
            if self._thread is None or self._is_stuck():
                self._start()
            else:
                self._changed.notify_all()
            return self._queued

    def wait(self, number: int, timeout: float) -> bool:
        """Wait until the deliveries up to ``number`` are done; False if
        they are not after ``timeout`` seconds."""
        if threading.current_thread() is self._thread:
            return False  # a subscriber that runs checks can't wait for itself
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._done < number:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is delivered."""
        return self.wait(self._queued, timeout)

    def _is_stuck(self) -> bool:
        busy = self._busy_since
        return (
            busy is not None
            and time.monotonic() - busy > STUCK_SECONDS
            and self._stuck < MAX_STUCK_THREADS
        )

    def _start(self) -> None:
        if self._thread is not None:
            # The hung delivery counts as done: nobody waits for it forever.
            self._stuck += 1
            self._done += 1
            self._changed.notify_all()
            logger.error(
                "A health signal subscriber has run for more than %g s; later"
                " signals are delivered on a new thread.",
                STUCK_SECONDS,
            )
        self._busy_since = None
        thread = threading.Thread(
            target=self._deliver, name=f"healthcheck-signals-{self._name}", daemon=True
        )
        self._thread = thread
        thread.start()

    def _deliver(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                if self._thread is not me:  # replaced while a subscriber hung
                    self._stuck -= 1
                    return
                while not self._pending:
                    self._changed.wait()
                    if self._thread is not me:
                        return
                delivery = self._pending.popleft()
                self._busy_since = time.monotonic()
            try:
                delivery()
            except BaseException:  # ``send`` catches; this is the last guard
                logger.exception("Delivering a health signal failed.")
            with self._lock:
                if self._thread is me:
                    self._busy_since = None
                    self._done += 1
                    self._changed.notify_all()
