"""What a fork does to the extension's state, and which processes refresh.

A pre-fork server (gunicorn, uWSGI) imports the app in a master process
and forks the workers that serve it. In a forked child, every runner,
signal queue and refresher starts afresh (the parent's threads don't exist
there; its locks may be held forever), pooled connections made before the
fork are let go of (the functions of :func:`on_fork`), and then the app's
own ``after_fork`` functions run.

A fork is noticed by process id, on every entry into the extension (an app
context pushed, a run, a refresher started): :func:`check_fork` resets a
child once, at its first entry. Not in an :func:`os.register_at_fork`
handler: uWSGI forks in C, where none runs, and gunicorn's gevent worker
monkey-patches ``threading`` after the fork, so locks, queues and pools
made in the handler would be real ones that block its event loop.

A process that never serves (uWSGI's master, the reloader's watching
process of ``flask run --reload``) never refreshes: :func:`never_serves`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import click
from flask import Flask
from flask.cli import run_command
from flask.helpers import get_debug_flag
from flask.signals import appcontext_pushed

from . import app_secrets, hostlock
from .checks import Parameter, describe_callable, injected_parameters
from .errors import ConfigurationError

logger = logging.getLogger("flask_healthcheck")


class ForkAware(Protocol):
    """Something of this process that a fork must reset in the child:
    ``after_fork_in_child()`` makes it afresh; an optional
    ``run_after_fork()`` is called after every such reset of the child."""

    def after_fork_in_child(self) -> None: ...


#: Everything of this process that a fork must reset in the child, and the
#: process it belongs to (where it was made, or last reset).
_fork_aware: weakref.WeakKeyDictionary[ForkAware, int] = weakref.WeakKeyDictionary()
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


def reset_after_fork(thing: ForkAware, app: Flask | None = None) -> None:
    """Call ``thing.after_fork_in_child()`` in every forked child (once per
    child, before anything else of the extension uses it there).

    :param app: notice forks when ``app`` pushes a context, as every request,
        CLI command and check does: before the app's own code uses anything
        made before the fork (uWSGI's fork, in C, runs no at-fork handler).
    """
    _fork_aware[thing] = os.getpid()
    if app is not None:
        appcontext_pushed.connect(_notice_fork, app, weak=False)


def _notice_fork(sender: Flask, **kwargs: object) -> None:
    check_fork()


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
    app_secrets.after_fork_in_child()
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
        try:
            if run_after_fork is not None:
                run_after_fork()
        except BaseException:
            logger.exception("Letting go of connections after a fork failed.")


#: What an ``after_fork`` function can ask for by name.
AFTER_FORK_NAMES = ("app", "config")


class AfterFork:
    """A function of the app's to call in each forked child (``health.after_fork``)."""

    def __init__(self, func: Callable[..., Any]) -> None:
        """Raises :class:`ConfigurationError` for a function that can't be
        called with ``app`` and ``config`` by name."""
        if not callable(func):
            raise ConfigurationError(f"after_fork needs a callable, got {func!r}.")
        self.func = func
        self.parameters: tuple[Parameter, ...] = injected_parameters(func)
        unknown = [
            p.name
            for p in self.parameters
            if p.name not in AFTER_FORK_NAMES and not p.optional
        ]
        if unknown:
            raise ConfigurationError(
                f"{describe_callable(func)} asks for {', '.join(map(repr, unknown))};"
                f" an after_fork function can ask for 'app' and 'config' only"
                f" (services are built per check, not at a fork)."
            )

    def __call__(self, app: Flask) -> None:
        available = {"app": app, "config": app.config}
        wanted = [p.name for p in self.parameters if p.name in available]
        self.func(**{name: available[name] for name in wanted})


def call_after_fork(app: Flask, functions: list[Callable[[Flask], object]]) -> None:
    """Call each of ``functions`` with ``app``, in the app's context; what
    one raises is logged and the next one runs."""
    if not functions:
        return
    with app.app_context():
        for function in functions:
            try:
                function(app)
            except BaseException:  # the others still run; the app serves
                logger.exception(
                    "An after_fork function of app %r raised in process %d; the"
                    " ones after it still run.",
                    app.name,
                    os.getpid(),
                )


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
            if uwsgi.masterpid() == os.getpid():  # 0 without --master
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
