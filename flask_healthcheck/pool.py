"""A pool of daemon threads that never makes a task wait for a thread.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter
exit and queues tasks once it has ``max_workers`` threads, so one hung check
would both stop a worker process from exiting and make every later run wait
behind it. Here a task goes to an idle thread, or to a new one when none is
idle. The runner never has more than one task per running check, so the
number of busy threads is bounded by the checks that are running (or hung);
idle threads exit after a while, or at once when the pool is closed. The
threads are the operating system's, also under gevent (see :mod:`.threads`).

An idle thread holds no reference to its last task, so it keeps nothing of
an app alive: the owner of a pool closes it when it is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .threads import allocate_lock, start_thread

logger = logging.getLogger("flask_healthcheck")

Task = Callable[[], None]

#: Seconds an idle thread waits for work before it exits.
IDLE_SECONDS = 60.0


class _Worker:
    """An idle thread's mailbox: ``submit`` puts a task and releases ``wake``."""

    __slots__ = ("task", "wake")

    def __init__(self) -> None:
        self.task: Task | None = None
        self.wake = allocate_lock()
        self.wake.acquire()


class WorkerPool:
    def __init__(self, name: str, idle_seconds: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._lock = allocate_lock()
        #: Idle threads, the most recently idle last (it is reused first, so
        #: the others can idle out).
        self._idle: list[_Worker] = []
        self._count = 0
        self._number = 0
        #: Set by :meth:`close`: threads exit instead of waiting for work.
        self._closed = False

    @property
    def thread_count(self) -> int:
        return self._count

    def submit(self, task: Task) -> None:
        """Start ``task`` now: on an idle thread, else on a new one.

        Raises what starting a thread raises (``RuntimeError: can't start
        new thread``); the next call tries again.
        """
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
                worker.task = task
                worker.wake.release()
                return
            self._count += 1
            self._number += 1
            name = f"{self._name}-{self._number}"
        # In a list the thread empties: its target would keep the task alive.
        first = [task]
        try:
            start_thread(lambda: self._work(first), name)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def close(self) -> None:
        """Make every thread exit once idle, now for those idle already.

        Safe in a finalizer or a weakref callback (it takes no lock): the
        owner calls it when it is dropped.
        """
        self._closed = True
        for worker in list(self._idle):
            try:
                worker.wake.release()  # with no task: the thread exits
            except RuntimeError:  # woken already
                pass

    def _work(self, first: list[Task]) -> None:
        worker = _Worker()
        task: Task | None = first.pop()
        try:
            while task is not None:
                try:
                    task()
                except BaseException:  # a thread must outlive whatever a task does
                    logger.exception("A health-check worker task raised.")
                # Idle, it must not keep the task (and what it refers to) alive.
                task = None
                if self._closed:
                    return
                with self._lock:
                    self._idle.append(worker)
                woken = worker.wake.acquire(True, self._idle_seconds)
                with self._lock:
                    if worker in self._idle:
                        # Unclaimed: idle too long, or woken by :meth:`close`.
                        # Out of the list, so no task is ever handed to it.
                        self._idle.remove(worker)
                        return
                    if not woken:
                        # Claimed meanwhile: ``submit`` gave it a task and
                        # released ``wake`` under this lock, so no wait here.
                        worker.wake.acquire(False)
                    task, worker.task = worker.task, None
        finally:
            with self._lock:
                self._count -= 1
