"""The background refresh, and what a fork does to it.

With several processes on one host, one of them refreshes: the refresher
of each tries every interval to take the app's :class:`~.hostlock.HostLock`
and runs the checks only while it holds it. A process that forks stops its
own refresher and lets go of its lock (an at-fork handler, in the parent);
it starts again on that process's next request, which a pre-fork master
never gets. A process that never serves never refreshes
(:func:`~.forks.never_serves`); a forked child starts afresh
(:mod:`~.forks`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from .delivery import SignalDispatcher
from .forks import check_fork, never_serves
from .hostlock import HostLock
from .pool import WorkerPool
from .recorder import Alerting

logger = logging.getLogger("flask_healthcheck")

#: The refreshers of this process, stopped in a parent that forks.
_refreshers: weakref.WeakSet[Refresher] = weakref.WeakSet()


def _after_fork_in_parent() -> None:
    for refresher in list(_refreshers):
        refresher.pause(forked=True)


os.register_at_fork(after_in_parent=_after_fork_in_parent)


class Refresher:
    """Calls ``run`` every ``interval`` seconds in one daemon thread.

    Whatever ``run`` raises is logged and the next run happens on time;
    signals are delivered on another thread, so no subscriber can stop it.

    :param host_lock: if given, ``run`` is called only while this process
        holds it; the thread tries to take it every interval.
    :param on_elected: called before the first run after this process
        took ``host_lock``.
    :param alerting: the runner's alert flag, turned off when the process
        forks while refreshing (see :attr:`forked`).
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], object],
        interval: float,
        host_lock: HostLock | None = None,
        on_elected: Callable[[], object] | None = None,
        alerting: Alerting | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.host_lock = host_lock
        self._run = run
        self._on_elected = on_elected
        self._alerting = alerting
        #: Set by :meth:`stop`: only :meth:`start` starts it again.
        self.stopped = False
        self._reset()
        _refreshers.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        #: The stop event of the last thread whose loop ended.
        self._loop_ended: threading.Event | None = None
        self._pid = 0
        #: True while this process's thread holds the host lock.
        self._elected = False
        #: After a thread that could not start: not before this (monotonic).
        self._retry_at = 0.0
        self._start_failed = False
        #: Set when this process forked while refreshing, until it refreshes
        #: again: a run it had in progress then sends no alerts (the
        #: children refresh and alert; a pre-fork master serves nothing).
        self.forked = False
        #: The process that said once why it does not refresh.
        self._declined = 0

    def after_fork_in_child(self) -> None:
        self._reset()

    @property
    def running(self) -> bool:
        """True if this process runs the refresh thread.

        Told by whether its loop has ended, not ``Thread.is_alive()``: under
        gevent that switches greenlets, and this is asked under the runner's
        lock (an operating system lock), where a switch can deadlock."""
        return (
            self._thread is not None
            and self._pid == os.getpid()
            and self._loop_ended is not self._stop_event
        )

    @property
    def elected(self) -> bool:
        """True if this process runs the refresh and is the one of its host
        that runs the checks (without a host lock, any process that runs
        the refresh)."""
        return self.running and (self.host_lock is None or self._elected)

    def start(self) -> None:
        """Start the thread unless this process runs it already, or never
        serves (see :func:`never_serves`)."""
        check_fork()
        with self._lock:
            self.stopped = False
            self._start_thread()

    def start_unless_stopped(self) -> None:
        """What every request does: start it if nobody stopped it."""
        check_fork()
        if self._thread is None or self._pid != os.getpid():
            if time.monotonic() < self._retry_at:
                return  # the last start failed: try again an interval later
            with self._lock:  # a stop() in between must win
                if not self.stopped:
                    self._start_thread()

    def _start_thread(self) -> None:
        """Start the thread; if it can't be started ("can't start new
        thread": a pids limit, say), log that once and leave it to a later
        request, an interval on, rather than fail the request or give up."""
        if self.running:
            return
        reason = never_serves()
        if reason is not None:
            if self._declined != os.getpid():
                self._declined = os.getpid()
                logger.info(
                    "The health checks of %r are not refreshed in process %d: %s."
                    " The processes that serve the app refresh them.",
                    self.name,
                    os.getpid(),
                    reason,
                )
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=self._loop,
            args=(stop,),
            name=f"healthcheck-refresh-{self.name}",
            daemon=True,
        )
        try:
            thread.start()
        except Exception as e:
            self._thread = None
            self._retry_at = time.monotonic() + max(self.interval, 0.1)
            if not self._start_failed:
                self._start_failed = True
                logger.error(
                    "Could not start the background health refresh (%s); a later"
                    " request tries again.",
                    e,
                )
            return
        self._start_failed = False
        self._retry_at = 0.0
        self._stop_event = stop
        self._pid = os.getpid()
        self._thread = thread
        self.forked = False

    def pause(self, *, forked: bool = False) -> None:
        """Stop the thread; the next request starts it again.

        :param forked: the process just forked (see :attr:`forked`).
        """
        with self._lock:
            if forked and self.running:
                self.forked = True
                if self._alerting is not None:
                    self._alerting.on = False
            self._stop_event.set()
            self._thread = None
            self._let_go()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread until :meth:`start`; waits up to ``timeout``
        seconds for a run in progress."""
        with self._lock:
            self.stopped = True
            thread, self._thread = self._thread, None
            self._stop_event.set()
            self._let_go()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _let_go(self) -> None:
        """Release the host lock, so another process takes over. Under
        ``self._lock``."""
        self._elected = False
        if self.host_lock is not None:
            self.host_lock.release()

    def _elect(self) -> bool:
        """Take the host lock; True if this process holds it."""
        if self.host_lock is None:
            return True
        with self._lock:
            was_elected = self._elected
            self._elected = self.host_lock.acquire()
        if self._elected and not was_elected and self._on_elected is not None:
            self._on_elected()
        return self._elected

    def _loop(self, stop: threading.Event) -> None:
        try:
            self._refresh_until(stop)
        finally:
            self._loop_ended = stop

    def _refresh_until(self, stop: threading.Event) -> None:
        # The first run happens even if the thread is stopped before it got
        # to it (a pre-fork master forks at once): what was started runs once.
        next_run = time.monotonic()
        while True:
            if never_serves() is not None:
                # app.run(use_reloader=True): the process that started the
                # refresh at import turned out to be the reloader's parent.
                self.pause()
                break
            try:
                if self._elect():
                    self._run()
            except BaseException:  # the refresh must go on whatever a run does
                logger.exception("The background health run failed.")
            # A fixed rate; a run longer than the interval delays the next.
            next_run = max(next_run + self.interval, time.monotonic())
            if stop.wait(next_run - time.monotonic()):
                break
        with self._lock:
            if self._thread is None:  # not started again meanwhile
                self._let_go()


class WeakCall:
    """Calls a method through a weak reference, so the thread holding it
    (a refresher's) keeps no app alive; once the object is collected,
    calls :attr:`gone` instead (the refresher's ``stop``)."""

    def __init__(self, method: Callable[[], object]) -> None:
        self._method = weakref.WeakMethod(method)
        self.gone: Callable[[], object] = lambda: None

    def __call__(self) -> None:
        method = self._method()
        if method is None:
            self.gone()
        else:
            method()


def release_when_dropped(
    owner: object, pool: WorkerPool, signals: SignalDispatcher
) -> weakref.finalize[[WorkerPool, SignalDispatcher], object]:
    """Once ``owner`` (an app's state) is collected, let the idle threads
    of ``pool`` and ``signals`` exit now rather than after their idle time.

    Call ``detach()`` on the result to cancel. The callbacks wait for no
    lock: the garbage collector may run them on any thread, one that holds
    a lock among them included.
    """
    finalizer = weakref.finalize(owner, _release, pool, signals)
    finalizer.atexit = False  # daemon threads end with the process
    return finalizer


def _release(pool: WorkerPool, signals: SignalDispatcher) -> None:
    pool.close()
    signals.close()
