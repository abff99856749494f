"""Running checks: concurrently, with timeouts, one run per check at a time.

Everything here is per check, not per URL: a request for any selection of
checks reuses each check's latest result while it is fresh enough, joins a
run of that check already in flight, and starts only the checks that have
neither. A check that hangs keeps its thread until it returns, and is not
started again meanwhile; every request waits for it only until its deadline.

The work is shared out: the :class:`~.scheduler.Scheduler` hands checks to
threads, the :class:`~.executor.Executor` runs a thread's checks one
after another in the app's context, and the :class:`~.recorder.Recorder`
turns the results that became checks' latest, under the runner's lock,
into history, signals and log lines, queued for delivery in that order.
A result becomes its check's latest the moment its check ends (a request
waiting for it has it then); it is recorded with the others of its run,
under one lock, before the run returns (or earlier: by whichever run or
late result takes the lock first, by its check's thread once no run waits
for it, and, run inline, as it ends if it fails or changes; results are
always recorded in the order they came).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from flask import Flask

from .checks import Check, CheckResult, HealthReport, Status
from .delivery import Delivery
from .execution import Execution, wait
from .executor import Executor, failure
from .pool import WorkerPool
from .recorder import Alerting, Outbox, Recorder
from .scheduler import Scheduler
from .services import Service
from .threads import allocate_lock

logger = logging.getLogger("flask_healthcheck")


@dataclass
class _Slot:
    """What the runner knows of one check."""

    #: The run in flight, if any.
    running: Execution | None = None
    #: The latest result, and ``time.monotonic()`` when it was had.
    latest: CheckResult | None = None
    latest_at: float = 0.0


class Runner:
    """Runs the checks of one app. Thread-safe; one per app.

    :param outbox: queues deliveries (signals, log lines) in order, under
        the runner's lock.
    :param default_timeout: seconds a check without its own timeout may run.
    :param alerting: the flag saying whether runs send the alert signals
        (``check_failed``, ``check_recovered``, ``health_changed``), set by
        the owner; always on if not given.
    :param threads: False to run checks on the calling thread, one after
        another (``HEALTHCHECK_THREADS``).
    """

    def __init__(
        self,
        app: Flask,
        outbox: Outbox,
        *,
        default_timeout: float,
        alerting: Alerting | None = None,
        threads: bool = True,
    ) -> None:
        self.app = app
        self._deliver = outbox.put
        self.alerting = Alerting() if alerting is None else alerting
        self._threads = threads
        self.default_timeout = default_timeout
        self.executor = Executor(app)
        self._reset()

    def _reset(self) -> None:
        self.scheduler = Scheduler(
            f"healthcheck-{self.app.name}", threads=self._threads
        )
        self.recorder = Recorder(self.app, self.alerting)
        self._lock = allocate_lock()
        self._slots: dict[str, _Slot] = {}

    def after_fork_in_child(self) -> None:
        """Start afresh: the parent's threads, locks and results are not
        this process's."""
        self._reset()

    @property
    def pool(self) -> WorkerPool:
        """The threads that run the checks."""
        return self.scheduler.pool

    # -- public ---------------------------------------------------------------

    def use_services(self, services: Mapping[str, Service]) -> None:
        """Inject checks' parameters from ``services`` from now on: the
        state hands its validated service map down before each run."""
        self.executor.services = services

    def assume(self, statuses: Mapping[str, Status], status: Status | None) -> None:
        """Compare the next result of each check in ``statuses``, and the
        next overall status, with these instead of this process's own: what
        another process of the host last alerted, when this one takes over
        the alerts from it. A recovery it never saw is then still sent, and
        a failure it already sent is no new ``health_changed``."""
        with self._lock:
            # Results had before are compared with this process's own.
            deliveries: list[Delivery] = []
            self.recorder.flush(deliveries)
            if deliveries:
                self._deliver(deliveries)
            self.recorder.assume(statuses, status)

    def run(
        self,
        checks: Sequence[Check],
        *,
        max_age: float = 0.0,
        background: bool = False,
    ) -> tuple[HealthReport, int]:
        """A report on ``checks`` and the number of its last delivery.

        Each check's latest result is reused while younger than ``max_age``
        seconds; a run of it in flight is joined; otherwise it starts now.
        Returns once every result is in or its check's deadline has passed.

        :param background: a run of the background refresh (see
            :meth:`.Scheduler.start`).
        """
        started_at = time.time()
        plan: list[CheckResult | Execution] = []
        mine: list[Execution] = []
        #: The executions of ``plan``, which this run waits for.
        waits: list[Execution] = []
        deliveries: list[Delivery] = []
        inline = self.scheduler.inline
        # The thread (a greenlet, under gevent) whose run runs them inline.
        here = threading.get_ident() if inline else None
        slots, default_timeout = self._slots, self.default_timeout
        with self._lock:
            now = time.monotonic()
            # Run inline, a check begins once those before it have ended.
            begins = now
            for check in checks:
                slot = slots.get(check.name)
                if slot is None:
                    slot = slots[check.name] = _Slot()
                if slot.latest is not None and now - slot.latest_at < max_age:
                    plan.append(slot.latest)
                elif (execution := slot.running) is None:
                    timeout = check.timeout or default_timeout
                    execution = slot.running = Execution(check, timeout, begins)
                    if inline:
                        begins = execution.deadline
                        execution.queued_on = here
                    mine.append(execution)
                    execution.runs += 1
                    plan.append(execution)
                    waits.append(execution)
                elif now >= execution.deadline:
                    # Hung since an earlier run: report it, don't start it again.
                    result = _still_running(execution, now)
                    self._record(execution.check, result, None, deliveries)
                    plan.append(result)
                else:
                    if here is not None and execution.queued_on == here:
                        # Asked for by a check queued before it on this
                        # thread: it runs now, in this run, not after.
                        mine.append(execution)
                    execution.runs += 1
                    plan.append(execution)
                    waits.append(execution)
            # Only results others had or have made is not a run of its own.
            own = bool(mine or deliveries)
            if deliveries:
                self._deliver(deliveries)
        # Where checks run is decided once per run, not asked again per check.
        execute = partial(self._execute, inline=inline)
        try:
            self.scheduler.start(mine, execute, self._give_up, background=background)
            # An execution's result, read here when it has one already.
            results = [
                item
                if isinstance(item, CheckResult)
                else item.result or self._wait(item)
                for item in plan
            ]
        except BaseException:
            # Given up while it waited (a request timeout, a killed greenlet):
            # what it has is recorded now, the rest by its checks' threads.
            abandoned: list[Delivery] = []
            with self._lock:
                self._leave(waits)
                self.recorder.flush(abandoned)
                self._deliver(abandoned)
            raise
        report = HealthReport.from_results(results, started_at)
        deliveries = []
        with self._lock:
            self._leave(waits)
            # The run's results (and any others') recorded at once, before
            # the report is returned.
            self.recorder.flush(deliveries)
            if own:
                every = self._slots.values()
                latest = (s.latest for s in every if s.latest is not None)
                self.recorder.run(latest, report, deliveries)
            number = self._deliver(deliveries)
        return report, number

    # -- one check ------------------------------------------------------------

    def call(self, check: Check, deadline: float) -> object:
        """Call ``check``'s function with its services as a check run here
        is called (see :meth:`.Executor.call`): how sections are called."""
        return self.executor.call(check, deadline, inline=self.scheduler.inline)

    def _execute(self, executions: Iterator[Execution], *, inline: bool) -> None:
        """Run the checks one after another, making each result its check's
        latest as it ends; never raises. ``inline`` as for
        :meth:`.Executor.execute`: then a failure or a change is recorded at
        once (see :meth:`_finish`)."""
        finish = partial(self._finish, inline)
        self.executor.execute(executions, finish, inline=inline)

    def _give_up(self, execution: Execution, reason: str) -> None:
        self._finish(
            False, execution, failure(execution.check, reason, 0.0, time.time()), None
        )

    def _finish(
        self,
        at_once: bool,
        execution: Execution,
        result: CheckResult,
        error: BaseException | None,
    ) -> None:
        """Make ``result`` the check's latest; ``at_once`` to record it now
        if it is a failure or a change, not when the run ends (run inline,
        its next check may hang for as long as it likes: its timeout is not
        enforced). ``at_once`` comes first, bound by a positional partial
        (see :meth:`_execute`): one is called for every check."""
        check = execution.check
        with self._lock:
            slot = self._slots.get(check.name)
            if slot is not None and slot.running is execution:
                slot.running = None
            now = time.monotonic()
            if execution.result is None and now <= execution.deadline:
                latest = slot.latest if slot is not None else None
                if at_once and result.status != "fail":
                    at_once = latest is not None and latest.status != result.status
                # The check's latest now; the run that waits for it records
                # it (what _settle does, here: this runs for every check).
                execution.result = result
                if slot is None:  # as _settle finds it: a KeyError
                    slot = self._slots[check.name]
                self.recorder.settle(check, result, latest, error)
                slot.latest = result
                slot.latest_at = now
                if at_once or not execution.runs:  # or every run that waited gave up
                    deliveries: list[Delivery] = []
                    self.recorder.flush(deliveries)
                    self._deliver(deliveries)
            else:
                self._late(execution, result, now)
            if execution.joined is not None:
                execution.joined.set()

    def _leave(self, waits: list[Execution]) -> None:
        """Under the lock: a run no longer waits for ``waits``."""
        for execution in waits:
            execution.runs -= 1

    def _late(self, execution: Execution, result: CheckResult, now: float) -> None:
        """Under the lock: a check that finished after its deadline,
        whether or not a request noticed in time. No run waits for this
        result: it is recorded now."""
        deliveries: list[Delivery] = []
        if execution.result is None:
            execution.result = _overran(execution, now, self.scheduler.inline)
            self._record(execution.check, execution.result, None, deliveries, now)
        deliveries.append(
            partial(
                logger.info,
                "Health check %r finished %.1f s after it timed out (%s).",
                execution.check.name,
                now - execution.deadline,
                result.status,
            )
        )
        self._deliver(deliveries)

    def _wait(self, execution: Execution) -> CheckResult:
        """The result of ``execution``, or a failure at its deadline."""
        if execution.result is None:
            wait(execution, self._lock)
            with self._lock:
                if execution.result is None:
                    execution.result = _timed_out(execution)
                    deliveries: list[Delivery] = []
                    self._record(execution.check, execution.result, None, deliveries)
                    self._deliver(deliveries)
        return execution.result

    def _settle(
        self,
        check: Check,
        result: CheckResult,
        error: BaseException | None,
        now: float | None = None,
    ) -> None:
        """Under the lock: make ``result`` the check's latest (had at
        ``now``, ``time.monotonic()``), to be recorded by :meth:`.Recorder.flush`.
        ``error`` is what the check raised, for the log."""
        slot = self._slots[check.name]
        self.recorder.settle(check, result, slot.latest, error)
        slot.latest = result
        slot.latest_at = time.monotonic() if now is None else now

    def _record(
        self,
        check: Check,
        result: CheckResult,
        error: BaseException | None,
        deliveries: list[Delivery],
        now: float | None = None,
    ) -> None:
        """Under the lock: make ``result`` the check's latest and record it
        now (after those settled before it)."""
        self._settle(check, result, error, now)
        self.recorder.flush(deliveries)


def _timed_out(execution: Execution) -> CheckResult:
    reason = f"timed out after {execution.timeout:g} s"
    started_at = time.time() - (time.monotonic() - execution.started)
    return failure(execution.check, reason, execution.timeout, started_at)


def _overran(execution: Execution, now: float, inline: bool) -> CheckResult:
    """A check that finished after its deadline: run inline, nobody could
    stop it, so its result says how long it took."""
    if not inline:
        return _timed_out(execution)
    took = now - execution.started
    reason = f"took {took:.1f} s, over its timeout of {execution.timeout:g} s"
    started_at = time.time() - took
    return failure(execution.check, reason, took, started_at)


def _still_running(execution: Execution, now: float) -> CheckResult:
    reason = (
        f"still running after {now - execution.started:.1f} s (timed out"
        f" after {execution.timeout:g} s); not started again"
    )
    return failure(execution.check, reason, execution.timeout, time.time())
