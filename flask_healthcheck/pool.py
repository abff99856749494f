"""A pool of daemon threads for running checks.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter
exit, so one hung check would stop a worker process from exiting. This pool
uses daemon threads, grows to at most ``max_threads`` (the runner keeps it
at the number of checks: a still-running check is never started twice, so
no run needs more), and lets idle threads exit after a while.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

#: A task gets a function to call once it is as good as done, so the pool
#: counts its thread as idle before the task returns (see ``submit``).
Task = Callable[[Callable[[], None]], None]

#: Seconds an idle thread waits for work before it exits.
IDLE_SECONDS = 60.0


class WorkerPool:
    def __init__(self, name: str, idle_seconds: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._tasks: queue.SimpleQueue[Task] = queue.SimpleQueue()
        #: One token per idle thread that no task has claimed yet.
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._count = 0
        #: Past this many threads, tasks wait in the queue for a free one.
        self.max_threads = 1

    @property
    def thread_count(self) -> int:
        return self._count

    def submit(self, task: Task) -> None:
        """Run ``task`` on an idle thread, or a new one if none is idle.

        ``task`` must not raise: it is the caller's job to record errors.
        It is called with a function ``ready`` that it should call just
        before it tells its own caller it is finished: the thread that woke
        up may hold the GIL and submit again before this one returns, and
        it should find an idle thread rather than start another.
        """
        if not self._idle.acquire(blocking=False):
            with self._lock:
                full = self._count >= self.max_threads
                if not full:
                    self._count += 1
                    number = self._count
            if not full:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{number}", daemon=True
                )
                thread.start()
        self._tasks.put(task)

    def _work(self) -> None:
        try:
            while True:
                try:
                    task = self._tasks.get(timeout=self._idle_seconds)
                except queue.Empty:
                    # Exit only with an unclaimed idle token: a claimed one
                    # means a task is on its way to some idle thread.
                    if self._idle.acquire(blocking=False):
                        return
                    continue
                released = False

                def ready() -> None:
                    nonlocal released
                    if not released:
                        released = True
                        self._idle.release()

                task(ready)
                ready()
        finally:
            with self._lock:
                self._count -= 1
