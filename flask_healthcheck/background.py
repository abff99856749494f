"""The background refresh, and what a fork does to the extension's state.

A pre-fork server (gunicorn, uWSGI) imports the app in a master process
and forks the workers that serve it. A worker must never serve or alert
from the master's results, and the master, which serves nothing, must not
go on running checks and sending alerts for its whole life. So:

- in a forked child, every runner, signal queue and refresher starts afresh
  (the parent's threads don't exist there; its locks may be held forever);
- a process that forks stops its own refresher; it starts again on that
  process's next request, which a pre-fork master never gets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("flask_healthcheck")


class ForkAware(Protocol):
    def after_fork_in_child(self) -> None: ...


#: Everything of this process that a fork must reset in the child.
_fork_aware: weakref.WeakSet[ForkAware] = weakref.WeakSet()
#: The refreshers of this process, stopped in a parent that forks.
_refreshers: weakref.WeakSet[Refresher] = weakref.WeakSet()


def reset_after_fork(thing: ForkAware) -> None:
    """Call ``thing.after_fork_in_child()`` in every forked child."""
    _fork_aware.add(thing)


def _after_fork_in_child() -> None:
    for thing in list(_fork_aware):
        thing.after_fork_in_child()


def _after_fork_in_parent() -> None:
    for refresher in list(_refreshers):
        refresher.pause()


os.register_at_fork(
    after_in_child=_after_fork_in_child, after_in_parent=_after_fork_in_parent
)


class Refresher:
    """Calls ``run`` every ``interval`` seconds in one daemon thread.

    Whatever ``run`` raises is logged and the next run happens on time;
    signals are delivered on another thread, so no subscriber can stop it.
    """

    def __init__(self, name: str, run: Callable[[], object], interval: float) -> None:
        self.name = name
        self.interval = interval
        self._run = run
        #: Set by :meth:`stop`: only :meth:`start` starts it again.
        self.stopped = False
        self._reset()
        _refreshers.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._pid = 0

    def after_fork_in_child(self) -> None:
        self._reset()

    @property
    def running(self) -> bool:
        """True if this process runs the refresh thread."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        """Start the thread unless this process runs it already."""
        with self._lock:
            self.stopped = False
            self._start_thread()

    def start_unless_stopped(self) -> None:
        """What every request does: start it if nobody stopped it."""
        if self._thread is None or self._pid != os.getpid():
            with self._lock:  # a stop() in between must win
                if not self.stopped:
                    self._start_thread()

    def _start_thread(self) -> None:
        if self.running:
            return
        self._stop_event = threading.Event()
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._loop,
            args=(self._stop_event,),
            name=f"healthcheck-refresh-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def pause(self) -> None:
        """Stop the thread; the next request starts it again."""
        with self._lock:
            self._stop_event.set()
            self._thread = None

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread until :meth:`start`; waits up to ``timeout``
        seconds for a run in progress."""
        with self._lock:
            self.stopped = True
            thread, self._thread = self._thread, None
            self._stop_event.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self, stop: threading.Event) -> None:
        next_run = time.monotonic()
        while not stop.is_set():
            try:
                self._run()
            except BaseException:  # the refresh must go on whatever a run does
                logger.exception("The background health run failed.")
            # A fixed rate; a run longer than the interval delays the next.
            next_run = max(next_run + self.interval, time.monotonic())
            stop.wait(next_run - time.monotonic())
