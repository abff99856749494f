"""Real threads, locks and waits with a deadline, whatever gevent patched.

Under gevent's monkey-patching, :mod:`threading` makes greenlets, not
threads: a check blocked in C (SQLite waiting for a lock, a C client's
socket) would block gevent's hub, and with it every request of the worker,
``/livez`` included. So the extension starts its threads and makes its locks
with the functions gevent saved before patching, and a wait made on a
greenlet yields to the hub until it is woken or its deadline passes.
Without gevent, these are :mod:`threading`'s own threads and locks.

gevent is optional and never imported here unless it is imported already.
Code that holds one of these locks must never yield to gevent's hub (no
I/O, no gevent lock, no logging): another greenlet that wants the lock
would block the hub, and the holder could never run again to release it.
"""

from __future__ import annotations

import _thread
import sys
import threading
from collections.abc import Callable
from typing import Any


def _original(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent patched it."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original(module, name)
    return getattr(sys.modules[module], name)


#: A lock of the operating system, never a greenlet's.
allocate_lock: Callable[[], _thread.LockType] = _original("_thread", "allocate_lock")
#: The id of the operating system's thread.
get_ident: Callable[[], int] = _original("_thread", "get_ident")
#: The operating system's id of the thread (Linux's ``/proc`` knows it).
get_native_id: Callable[[], int] = _original("_thread", "get_native_id")
_start_new_thread: Callable[..., int] = _original("_thread", "start_new_thread")
#: Thread-local data of the operating system's threads (gevent's ``local``
#: is per greenlet).
local: type[Any] = _original("_thread", "_local")

#: Marks the threads this module started under gevent: they wait natively.
_own = local()
_patched = False


def gevent_patched() -> bool:
    """True if gevent has monkey-patched :mod:`threading` (checked on each
    call until it is: gunicorn's ``--preload`` imports the app first)."""
    global _patched
    if not _patched:
        monkey = sys.modules.get("gevent.monkey")
        _patched = monkey is not None and bool(monkey.is_module_patched("threading"))
    return _patched


def start_thread(target: Callable[[], object], name: str) -> None:
    """Run ``target`` on a new daemon thread of the operating system.

    Raises what starting it raises (``RuntimeError: can't start new thread``
    when the process is at its limit); the caller decides what that means.
    """
    if gevent_patched():
        _start_new_thread(_run_own, (target,))
    else:
        threading.Thread(target=target, name=name, daemon=True).start()


def _run_own(target: Callable[[], object]) -> None:
    _own.native = True
    target()


Wake = Callable[[], object]
Sleep = Callable[[float], object]


def _waiter() -> tuple[Wake, Sleep]:
    """A pair: ``sleep(timeout)`` returns once ``wake()`` was called (each
    called once) or ``timeout`` seconds have passed. On a greenlet it yields
    to gevent's hub meanwhile; ``wake`` may be called from any thread."""
    if gevent_patched() and not getattr(_own, "native", False):
        import gevent
        import gevent.event

        event = gevent.event.Event()
        loop = gevent.get_hub().loop

        def wake() -> None:
            loop.run_callback_threadsafe(event.set)

        return wake, event.wait
    lock = allocate_lock()
    lock.acquire()

    def sleep(timeout: float) -> object:
        return lock.acquire(True, timeout)

    return lock.release, sleep


def _bounded(timeout: float) -> float:
    return min(max(timeout, 0.0), threading.TIMEOUT_MAX)


class Event:
    """A flag set once, from any thread, and waited for with a deadline
    from any thread or greenlet (gevent's ``Event`` works within one
    thread only)."""

    __slots__ = ("_lock", "_flag", "_wakers")

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._flag = False
        self._wakers: list[Wake] = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._lock:
            self._flag = True
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    def wait(self, timeout: float) -> bool:
        """True once set; False if not set within ``timeout`` seconds."""
        if self._flag:
            return True
        if timeout <= 0:
            return False
        wake, sleep = _waiter()
        with self._lock:
            if self._flag:
                return True
            self._wakers.append(wake)
        sleep(_bounded(timeout))
        if not self._flag:
            with self._lock:
                if wake in self._wakers:
                    self._wakers.remove(wake)
        return self._flag


class Condition:
    """:class:`threading.Condition`'s ``wait`` and ``notify_all`` over an
    operating system lock, with the waits of :class:`Event`."""

    def __init__(self, lock: _thread.LockType) -> None:
        self._lock = lock
        self._wakers: list[Wake] = []

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def wait(self, timeout: float) -> None:
        """With the lock held: let go of it until notified or ``timeout``
        seconds have passed, then take it again."""
        wake, sleep = _waiter()
        self._wakers.append(wake)
        self._lock.release()
        try:
            sleep(_bounded(timeout))
        finally:
            self._lock.acquire()
            if wake in self._wakers:
                self._wakers.remove(wake)

    def notify_all(self) -> None:
        """With the lock held: wake every waiter."""
        wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()
