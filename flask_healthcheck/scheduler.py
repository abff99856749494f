"""Handing checks to threads (waiting for them with a deadline is
:func:`.execution.wait`).

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
from collections.abc import Callable, Generator, Iterator
from operator import attrgetter

from .cputime import (
    RunQueueWaits,
    any_ready,
    busy_times,
    kept_since,
    own_clock,
    run_queue_waits,
)
from .execution import Execution
from .pool import WorkerPool
from .threads import Event, allocate_lock, get_native_id

logger = logging.getLogger("flask_healthcheck")

#: While checks of a run wait for a thread, how often the thread that
#: started them looks at the threads running them (seconds).
RAMP_SECONDS = 0.001
#: Seconds over which the CPU the running checks of a run use is judged:
#: a few looks, so one look at a thread between two checks tells little.
QUIET_SECONDS = 3 * RAMP_SECONDS
#: A look this much later than asked for means that this thread waited for
#: the GIL or a CPU, and so perhaps did the others: what they did
#: meanwhile tells nothing (the interpreter's switch interval).
LATE_SECONDS = max(sys.getswitchinterval(), 2 * RAMP_SECONDS)
#: The share of one CPU the running checks of a run use between them, at
#: least, when they are burning CPU rather than waiting: another thread
#: would then mostly wait for the GIL.
BURNING = 0.5
#: Seconds a probe's checks may burn CPU with none finishing before one
#: more thread takes the checks that wait (at most a quarter of the
#: shortest timeout among them): a check that spins holds the others back
#: no longer than this.
PATIENCE_SECONDS = 0.25
#: The same for the background refresh: at most one more thread per
#: quarter of the shortest timeout, so CPU-bound checks never take a
#: thread each from the app's requests.
BACKGROUND_PATIENCE_SECONDS = 2.5


class _Batch:
    """The checks one request starts, handed out to the threads that run
    them: quick checks run one after another on one thread (a thread
    hand-off costs more than they do), stuck ones soon get a thread each,
    CPU-bound ones share a few (more would only take turns at the GIL)."""

    __slots__ = (
        "lock",
        "pending",
        "total",
        "done",
        "threads",
        "started",
        "clocks",
        "finished",
    )

    def __init__(self, executions: list[Execution]) -> None:
        self.lock = allocate_lock()
        # The earliest deadline first: checks that burn CPU one after
        # another on a thread must not keep one with a shorter timeout
        # from a thread until that timeout (a stable sort: in order else).
        self.pending = deque(sorted(executions, key=_deadline))
        self.total = len(executions)
        #: Checks finished (or given up): all ``total`` of them finishes the
        #: batch; the ramp sees progress in it.
        self.done = 0
        #: Threads asked for, and threads that have begun taking checks.
        self.threads = 0
        self.started = 0
        #: The CPU-time clock of each thread taking checks, and its native
        #: id (``time.pthread_getcpuclockid``; a thread whose clock can't
        #: be had is left out: it counts as waiting).
        self.clocks: dict[int, int] = {}
        self.finished = Event()


_deadline = attrgetter("deadline")


def overdue(execution: Execution, now: float) -> bool:
    """True once ``execution`` has waited for a thread a quarter of its
    timeout: if no check has finished for a patience (those ahead of it
    spin, each let hold the next back a patience), it gets a thread now
    (one per look, as threads begin). Checks that finish meanwhile compute:
    more threads would only take turns with them at the GIL."""
    return now - execution.started >= execution.timeout / 4


#: Runs the executions it is given one after another (each taken once the
#: one before has ended) and records each result; never raises.
Run = Callable[[Iterator[Execution]], None]
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

    def start(
        self,
        executions: list[Execution],
        run: Run,
        give_up: GiveUp,
        *,
        background: bool = False,
    ) -> None:
        """Begin ``executions``; returns once each has begun (on a thread),
        or, run inline, once each has finished.

        :param background: a run of the background refresh, which nobody
            waits for: checks that burn CPU get more threads more slowly
            (:data:`BACKGROUND_PATIENCE_SECONDS`), as they take the GIL
            from the app's requests.
        """
        if not executions:
            return
        if self.inline:
            # Each check's time counts from when it begins (lazily, once
            # the one before it has ended).
            # A check that ran meanwhile, in a run a check before it asked
            # for (see Execution.queued_on), is not run again.
            run(
                execution.begin(time.monotonic())
                for execution in executions
                if execution.result is None
            )
            return
        batch = _Batch(executions)
        try:
            if not self._ramp(batch, run, background):
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

    def _ramp(self, batch: _Batch, run: Run, background: bool) -> bool:
        """Hand ``batch`` to one thread, and add threads only while its
        checks wait and the running ones are stuck, until each check has
        begun. False if checks still wait for a thread at the last deadline.

        Every :data:`RAMP_SECONDS` it looks at the threads running them.
        Over :data:`QUIET_SECONDS` they used less than half a CPU between
        them (:data:`BURNING`; time ready to run but kept from a CPU by a
        busy machine counts as used, and so does a thread ready to run when
        looked at): they mostly wait (on I/O, a sleep, a lock,
        or hang), so the threads double (quadruple if they used almost
        none), and a hung or slow check never holds the others back. They
        used more: another thread would only take turns with them at the
        GIL (and with the app's requests), so quick checks run one after
        another on one thread (a hand-off costs more than they do) and
        CPU-bound ones share it. Where a thread's CPU time can't be read,
        the threads count as waiting when none of their checks finished
        meanwhile.

        Whatever the threads do, one more comes once no check has finished
        for a patience (:data:`PATIENCE_SECONDS`): a check that spins holds
        the others back no longer than that. Time the threads spent kept
        from a CPU by a busy machine doesn't count (it would make checks
        that merely compute look like ones that spin, and more threads
        would only slow each of them further), up to a quarter of the
        shortest timeout. Looks this thread could make only late (the GIL
        or the CPU were busy) tell nothing, and wait for the patience too.
        """
        deadline = max(execution.deadline for execution in batch.pending)
        shortest = min(execution.timeout for execution in batch.pending)
        longest = BACKGROUND_PATIENCE_SECONDS if background else PATIENCE_SECONDS
        patience = min(longest, shortest / 4)
        self._add_threads(batch, run, 1)
        waits = RunQueueWaits()
        try:
            return self._look(batch, run, patience, shortest / 4, deadline, waits)
        finally:
            waits.close()

    def _look(
        self,
        batch: _Batch,
        run: Run,
        patience: float,
        most: float,
        deadline: float,
        waits: RunQueueWaits,
    ) -> bool:
        """The looks of :meth:`_ramp`; ``most`` is the patience in wall time."""
        # Checks finished, and since when none has (or a thread was added
        # for want of it); the time the threads had waited for a CPU then
        # (read at the next look at which none has finished and all have
        # begun).
        done = 0
        since = previous = progress = time.monotonic()
        queued: dict[int, float] | None = None
        # The window in which the threads are judged: when it began, the
        # time they had used or wanted a CPU then (read lazily), and the
        # checks finished by then.
        window, window_done = since, 0
        base: dict[int, float] | None = None
        while not batch.finished.wait(RAMP_SECONDS):
            with batch.lock:
                waiting = len(batch.pending)
                begun = batch.started == batch.threads
                finished = batch.done
                clocks = dict(batch.clocks)
                first = batch.pending[0] if waiting else None
            if first is None:
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            late, previous = now - previous > RAMP_SECONDS + LATE_SECONDS, now
            if finished != done:
                done, since, queued, progress = finished, now, None, now
            elif queued is None and begun:
                queued = run_queue_waits(clocks, waits)
            if not begun:  # threads still starting are no sign of slow checks
                base = None
            elif (overdue(first, now) and now - progress >= patience) or (
                now - since >= patience
                and (
                    now - since >= most
                    or queued is None
                    or now - since - kept_since(queued, clocks, waits) >= patience
                )
            ):
                self._add_threads(batch, run, 1)
                since, base, queued = now, None, None
            elif late:
                base = None
            elif base is None:
                base, window, window_done = busy_times(clocks, waits), now, done
            elif now - window >= QUIET_SECONDS:
                cpu = busy_times(clocks, waits)
                grow = 1  # threads to add for each running
                if cpu:
                    burnt = sum(t - base[c] for c, t in cpu.items() if c in base)
                    share = burnt / (now - window) / BURNING
                    if share < 1 and any_ready(clocks, waits):
                        share = 1  # kept from a CPU: not yet in schedstat
                    # Almost idle (all stuck, say): faster.
                    grow = 0 if share >= 1 else 3 if share < 1 / 8 else 1
                elif done != window_done:
                    grow = 0
                if grow:
                    self._add_threads(batch, run, min(waiting, grow * batch.threads))
                    base = None
                else:
                    base, window, window_done = cpu, now, done
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
        """Run checks of ``batch`` until none is left, in a pool thread:
        all in one call of ``run`` (see :meth:`_take`)."""
        clock = own_clock()
        with batch.lock:
            batch.started += 1
            if clock is not None:
                batch.clocks[clock] = get_native_id()
        taken = self._take(batch)
        try:
            run(taken)
        finally:
            taken.close()
            if clock is not None:
                with batch.lock:
                    batch.clocks.pop(clock, None)

    def _take(self, batch: _Batch) -> Generator[Execution, None, None]:
        """The checks of ``batch`` for one thread, each taken once the one
        before it has ended (and is counted done)."""
        lock, pending, total = batch.lock, batch.pending, batch.total
        with lock:
            execution = pending.popleft() if pending else None
        # The lock's methods called by hand (``try``/``finally`` as ``with``
        # does it): a ``with`` costs as much again as the lock, per check.
        acquire, release = lock.acquire, lock.release
        while execution is not None:
            try:
                yield execution
            except GeneratorExit:  # the run raised: done all the same
                self._count_done(batch)
                raise
            # Counted done and the next taken under one lock: a quick
            # check costs little more than the lock.
            acquire()
            try:
                batch.done = done = batch.done + 1
                execution = pending.popleft() if pending else None
            finally:
                release()
            if done == total:
                batch.finished.set()

    def _count_done(self, batch: _Batch) -> None:
        with batch.lock:
            batch.done += 1
            done = batch.done == batch.total
        if done:
            batch.finished.set()


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
