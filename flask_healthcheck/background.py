"""The background refresh, and what a fork does to the extension's state.

A pre-fork server (gunicorn, uWSGI) imports the app in a master process
and forks the workers that serve it. A worker must never serve or alert
from the master's results, and the master, which serves nothing, must not
go on running checks and sending alerts for its whole life. So:

- in a forked child, every runner, signal queue and refresher starts afresh
  (the parent's threads don't exist there; its locks may be held forever),
  pooled connections made before the fork are let go of (the functions of
  :func:`on_fork`), and then the app's own ``after_fork`` functions run;
- a process that forks stops its own refresher; it starts again on that
  process's next request, which a pre-fork master never gets;
- a process that never serves (uWSGI's master, the reloader's watching
  process of ``flask run --reload``) never refreshes.

A fork is noticed by process id, on every entry into the extension (an app
context pushed, a run, a refresher started): :func:`check_fork` resets a
child once, at its first entry. Not in an :func:`os.register_at_fork`
handler: uWSGI forks in C, where none runs, and gunicorn's gevent worker
monkey-patches ``threading`` after the fork, so locks, queues and pools
made in the handler would be real ones that block its event loop. Only
the parent's side is an at-fork handler: it stops its refresh at once.

With several processes on one host, one of them refreshes: the refresher
of each tries every interval to take the app's :class:`~.hostlock.HostLock`
and runs the checks only while it holds it. A child closes the lock files
it inherited; a process that forks lets go of its lock.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import click
from flask import Flask
from flask.cli import run_command
from flask.helpers import get_debug_flag

from . import hostlock, redact
from .hostlock import HostLock

logger = logging.getLogger("flask_healthcheck")


class ForkAware(Protocol):
    """Something of this process that a fork must reset in the child:
    ``after_fork_in_child()`` makes it afresh; an optional
    ``run_after_fork()`` is called after every such reset of the child."""

    def after_fork_in_child(self) -> None: ...


#: Everything of this process that a fork must reset in the child, and the
#: process it belongs to (where it was made, or last reset).
_fork_aware: weakref.WeakKeyDictionary[ForkAware, int] = weakref.WeakKeyDictionary()
#: The refreshers of this process, stopped in a parent that forks.
_refreshers: weakref.WeakSet[Refresher] = weakref.WeakSet()
#: Functions called with each app in a forked child: see :func:`on_fork`.
_fork_hooks: list[Callable[[Flask], object]] = []
#: The process whose state this is: a different ``os.getpid()`` means a fork.
_pid = os.getpid()
#: One lock per process, made in it: a lock of the parent's may be held by a
#: thread that does not exist in the child. Keyed by pid, since
#: ``dict.setdefault`` is atomic where making a lock and swapping it is not.
_reset_locks: dict[int, threading.RLock] = {}
#: The process being reset, while :func:`check_fork` runs (it may be
#: re-entered from the same thread: an ``after_fork`` function that pushes
#: an app context).
_resetting = 0


def reset_after_fork(thing: ForkAware) -> None:
    """Call ``thing.after_fork_in_child()`` in every forked child (once per
    child, before anything else of the extension uses it there)."""
    _fork_aware[thing] = os.getpid()


def on_fork(func: Callable[[Flask], object]) -> Callable[[Flask], object]:
    """Call ``func(app)`` in every forked child, for each app of the
    extension, before its own ``after_fork`` functions and before anything
    of the app runs there: how the ready-made services let go of pooled
    connections made before the fork. Usable as a decorator."""
    if func not in _fork_hooks:
        _fork_hooks.append(func)
    return func


def fork_hooks() -> tuple[Callable[[Flask], object], ...]:
    """The functions given to :func:`on_fork`, in order."""
    return tuple(_fork_hooks)


def check_fork() -> bool:
    """Reset this process's state if it is a forked child that was not reset
    yet; True if this call did. Cheap when nothing forked (one
    ``os.getpid()``): called on every entry into the extension."""
    global _pid, _resetting
    pid = os.getpid()
    if pid == _pid:
        return False
    with _reset_locks.setdefault(pid, threading.RLock()):
        if pid == _pid or _resetting == pid:
            return False  # another thread did it, or this one is doing it
        _resetting = pid
        try:
            _reset(pid)
        finally:
            _pid = pid
            _resetting = 0
            for other in [key for key in _reset_locks if key != pid]:
                _reset_locks.pop(other, None)
    return True


def _reset(pid: int) -> None:
    hostlock.forget_inherited()
    redact.after_fork_in_child()
    inherited = [thing for thing, owner in list(_fork_aware.items()) if owner != pid]
    for thing in inherited:
        _fork_aware[thing] = pid
        try:
            thing.after_fork_in_child()
        except BaseException:  # one app's failure must not leave the others
            logger.exception("Resetting the health checks after a fork failed.")
    # Then the functions that let go of connections, once every app is reset:
    # one of them may use another app.
    for thing in inherited:
        run_after_fork = getattr(thing, "run_after_fork", None)
        if run_after_fork is not None:
            run_after_fork()


def _after_fork_in_parent() -> None:
    for refresher in list(_refreshers):
        refresher.pause(forked=True)


os.register_at_fork(after_in_parent=_after_fork_in_parent)


def never_serves() -> str | None:
    """Why this process will never serve a request, or None if it may.

    - uWSGI's master (``--master``): it loads the app (unless
      ``--lazy-apps``) and forks the workers, in C; it serves nothing.
    - The reloader's watching process (``flask run --reload``, ``--debug``,
      ``app.run(use_reloader=True)``): it loads the app too, then only
      restarts a child that serves it, with the code of the moment.
    """
    uwsgi: Any = sys.modules.get("uwsgi")
    if uwsgi is not None:
        try:
            if uwsgi.opt.get("master") and uwsgi.worker_id() == 0:
                return "it is uWSGI's master process"
        except Exception:  # not the real uwsgi module; serve as usual
            pass
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return None  # the reloader's child: the one that serves
    if "werkzeug._reloader" in sys.modules and "WERKZEUG_SERVER_FD" in os.environ:
        # run_simple(use_reloader=True) got to running the reloader.
        return "it is the reloader's watching process"
    context = click.get_current_context(silent=True)
    while context is not None:
        if context.command is run_command:
            reload = context.params.get("reload")
            if reload is None:  # flask run's default: reload in debug mode
                reload = get_debug_flag()
            return "it is the reloader's watching process" if reload else None
        context = context.parent
    return None


class Refresher:
    """Calls ``run`` every ``interval`` seconds in one daemon thread.

    Whatever ``run`` raises is logged and the next run happens on time;
    signals are delivered on another thread, so no subscriber can stop it.

    :param host_lock: if given, ``run`` is called only while this process
        holds it; the thread tries to take it every interval.
    :param on_elected: called before the first run after this process
        took ``host_lock``.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], object],
        interval: float,
        host_lock: HostLock | None = None,
        on_elected: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self.interval = interval
        self.host_lock = host_lock
        self._run = run
        self._on_elected = on_elected
        #: Set by :meth:`stop`: only :meth:`start` starts it again.
        self.stopped = False
        self._reset()
        _refreshers.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._pid = 0
        #: True while this process's thread holds the host lock.
        self._elected = False
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
        """True if this process runs the refresh thread."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

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
            with self._lock:  # a stop() in between must win
                if not self.stopped:
                    self._start_thread()

    def _start_thread(self) -> None:
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
        self._stop_event = threading.Event()
        self._pid = os.getpid()
        self.forked = False
        self._thread = threading.Thread(
            target=self._loop,
            args=(self._stop_event,),
            name=f"healthcheck-refresh-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def pause(self, *, forked: bool = False) -> None:
        """Stop the thread; the next request starts it again.

        :param forked: the process just forked (see :attr:`forked`).
        """
        with self._lock:
            if forked and self.running:
                self.forked = True
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
