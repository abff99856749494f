"""A pool of daemon threads that never makes a task wait for a thread.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter
exit and queues tasks once it has ``max_workers`` threads, so one hung check
would both stop a worker process from exiting and make every later run wait
behind it. Here a task goes to an idle thread, or to a new one when none is
idle. The runner never has more than one task per running check, so the
number of busy threads is bounded by the checks that are running (or hung);
idle threads exit after a while, or at once when the pool is closed.

An idle thread holds no reference to its last task, so it keeps nothing of
an app alive: the owner of a pool closes it when it is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

logger = logging.getLogger("flask_healthcheck")

Task = Callable[[], None]

#: Seconds an idle thread waits for work before it exits.
IDLE_SECONDS = 60.0


class WorkerPool:
    def __init__(self, name: str, idle_seconds: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        #: Tasks for idle threads; None makes a thread exit (:meth:`close`).
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        #: One token per idle thread that no task has claimed yet.
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._count = 0
        self._number = 0
        #: Set by :meth:`close`: threads exit instead of waiting for work.
        self._closed = False

    @property
    def thread_count(self) -> int:
        return self._count

    def submit(self, task: Task) -> None:
        """Start ``task`` now: on an idle thread, else on a new one."""
        if self._idle.acquire(blocking=False):
            self._tasks.put(task)
            return
        with self._lock:
            self._count += 1
            self._number += 1
            name = f"{self._name}-{self._number}"
        # In a list the thread empties: a thread keeps its arguments.
        thread = threading.Thread(
            target=self._work, args=([task],), name=name, daemon=True
        )
        try:
            thread.start()
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
        for _ in range(self._count):
            self._tasks.put(None)

    def _work(self, first: list[Task]) -> None:
        task: Task | None = first.pop()
        try:
            while task is not None and not self._closed:
                try:
                    task()
                except BaseException:  # a thread must outlive whatever a task does
                    logger.exception("A health-check worker task raised.")
                # Idle, it must not keep the task (and what it refers to) alive.
                task = None
                self._idle.release()
                try:
                    task = self._tasks.get(timeout=self._idle_seconds)
                except queue.Empty:
                    # Exit only with an unclaimed idle token: a claimed one
                    # means a task is on its way to some idle thread.
                    if self._idle.acquire(blocking=False):
                        return
                    task = self._tasks.get()
        finally:
            with self._lock:
                self._count -= 1
