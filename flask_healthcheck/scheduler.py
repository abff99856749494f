"""Handing checks to threads, and waiting for them with a deadline.

Checks run on threads of a :class:`~.pool.WorkerPool` (the operating
system's, also under gevent), so a run costs about its slowest check and
a request waits for each check only until its deadline. Without threads
(``HEALTHCHECK_THREADS = False``, or a uWSGI that runs no Python threads)
they run one after another on the calling thread: a timeout is then
reported, not enforced.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable

from .checks import Check, CheckResult
from .pool import WorkerPool
from .threads import Event, allocate_lock

logger = logging.getLogger("flask_healthcheck")

#: While checks of a run wait for a thread, the threads running it double
#: this often (seconds).
RAMP_SECONDS = 0.001


class Execution:
    """One run of one check, shared by every request that joins it."""

    __slots__ = ("check", "timeout", "started", "deadline", "result", "joined")

    def __init__(self, check: Check, timeout: float, now: float) -> None:
        self.check = check
        self.timeout = timeout
        self.begin(now)
        #: Set once, under the runner's lock: by the thread that ran the
        #: check, or by a request that gave up on it at its deadline.
        self.result: CheckResult | None = None
        #: Set when ``result`` is; made by the first request that has to wait.
        self.joined: Event | None = None

    def begin(self, now: float) -> None:
        """Count the check's time from ``now`` (``time.monotonic()``)."""
        self.started = now
        self.deadline = now + self.timeout


class _Batch:
    """The checks one request starts, handed out to the threads that run
    them: quick checks run one after another on one thread (a thread
    hand-off costs more than they do), slow ones soon get a thread each."""

    __slots__ = ("lock", "pending", "remaining", "threads", "started", "finished")

    def __init__(self, executions: list[Execution]) -> None:
        self.lock = allocate_lock()
        self.pending = deque(executions)
        self.remaining = len(executions)
        #: Threads asked for, and threads that have begun taking checks.
        self.threads = 0
        self.started = 0
        self.finished = Event()


#: Runs one execution and records its result; never raises.
Run = Callable[[Execution], None]
#: Records a failure of an execution no thread could take, for a reason.
GiveUp = Callable[[Execution, str], None]


class Scheduler:
    """Starts the checks of one app's runs. Thread-safe; one per app.

    :param threads: False to run checks on the calling thread, one after
        another (``HEALTHCHECK_THREADS``).
    """

    def __init__(self, name: str, *, threads: bool = True) -> None:
        self.pool = WorkerPool(name)
        self.threads = threads
        #: True while threads can't be started: logged once, until one can.
        self._failing = False

    @property
    def inline(self) -> bool:
        """True if checks run on the calling thread."""
        return not self.threads or not threads_can_run()

    def start(self, executions: list[Execution], run: Run, give_up: GiveUp) -> None:
        """Begin ``executions``; returns once each has begun (on a thread),
        or, run inline, once each has finished."""
        if not executions:
            return
        if self.inline:
            for execution in executions:
                execution.begin(time.monotonic())
                run(execution)
            return
        batch = _Batch(executions)
        try:
            if not self._ramp(batch, run):
                # Threads started but never ran (a frozen or thread-starved
                # process): what none took fails at its deadline.
                self._give_up(batch, give_up, "no thread took it before its timeout")
        except Exception as e:  # "can't start new thread": a pids limit, say
            if not self._failing:
                self._failing = True
                logger.error(
                    "No thread could be started to run health checks (%s); the"
                    " checks fail until one can, and each run tries again.",
                    e,
                )
            self._give_up(batch, give_up, f"no thread could be started to run it ({e})")
        else:
            self._failing = False

    def _ramp(self, batch: _Batch, run: Run) -> bool:
        """Hand ``batch`` to one thread, and double the threads every
        :data:`RAMP_SECONDS` while its checks wait and every thread is busy,
        until each check has begun. Quick checks thus cost one hand-off per
        request; slow or hung ones each get their own thread at once.
        False if checks still wait for a thread at the last deadline."""
        deadline = max(execution.deadline for execution in batch.pending)
        self._add_threads(batch, run, 1)
        while not batch.finished.wait(RAMP_SECONDS):
            with batch.lock:
                waiting = len(batch.pending)
                # Threads that have not begun yet are no sign of slow checks.
                stalled = batch.started == batch.threads
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                return False
            if stalled:
                self._add_threads(batch, run, min(waiting, batch.threads))
        return True

    def _add_threads(self, batch: _Batch, run: Run, count: int) -> None:
        for _ in range(count):
            batch.threads += 1
            try:
                self.pool.submit(lambda: self._drain(batch, run))
            except BaseException:
                batch.threads -= 1
                raise

    def _give_up(self, batch: _Batch, give_up: GiveUp, reason: str) -> None:
        """Fail the checks of ``batch`` that no thread has taken, once: a
        check left waiting for a thread would be "still running" forever."""
        with batch.lock:
            left = list(batch.pending)
            batch.pending.clear()
        for execution in left:
            give_up(execution, reason)
            self._count_done(batch)

    def _drain(self, batch: _Batch, run: Run) -> None:
        """Run checks of ``batch`` until none is left; in a pool thread."""
        with batch.lock:
            batch.started += 1
        while True:
            with batch.lock:
                if not batch.pending:
                    return
                execution = batch.pending.popleft()
            try:
                run(execution)
            finally:
                self._count_done(batch)

    def _count_done(self, batch: _Batch) -> None:
        with batch.lock:
            batch.remaining -= 1
            done = batch.remaining == 0
        if done:
            batch.finished.set()


def wait(execution: Execution) -> None:
    """Wait until ``execution`` has its result or its deadline has passed
    (read again on waking: a check run inline begins late)."""
    joined = execution.joined
    if joined is None:
        return
    while execution.result is None:
        left = execution.deadline - time.monotonic()
        if left <= 0 or joined.wait(left):
            return


#: True once the missing threads were logged in this process.
_threads_logged = False


def threads_can_run() -> bool:
    """False under a uWSGI whose Python threads are off (before uWSGI
    2.0.27, without ``--enable-threads``): a check's thread would run only
    while some request happens to let it, so checks run inline there, and
    an ERROR says so once per process."""
    global _threads_logged
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None or getattr(uwsgi, "has_threads", True):
        return True
    if not _threads_logged:
        _threads_logged = True
        logger.error(
            "uWSGI runs this app without Python threads, so health checks run"
            " one after another on the request thread and their timeouts are"
            " reported, not enforced (a hung check holds the request). Start"
            " uWSGI with --enable-threads, or set HEALTHCHECK_THREADS = False"
            " to run them inline on purpose."
        )
    return False
