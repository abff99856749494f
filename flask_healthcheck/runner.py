"""Running checks: concurrently, with timeouts, one run per check at a time.

Everything here is per check, not per URL: a request for any selection of
checks reuses each check's latest result while it is fresh enough, joins a
run of that check already in flight, and starts only the checks that have
neither. A check that hangs keeps its thread until it returns, and is not
started again meanwhile; every request waits for it only until its deadline.

Each result that becomes a check's latest is turned, under the runner's
lock, into the signals and log lines it causes, and queued for delivery in
that order; delivering them is another thread's job. It is also added to
the runner's :class:`~flask_healthcheck.history.History`, once, however
many requests reuse it.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from flask import Flask
from flask.ctx import AppContext
from flask.signals import appcontext_tearing_down

from . import signals
from .checks import Check, CheckResult, HealthReport, Status, interpret, overall_status
from .history import History
from .logs import log_transition
from .pool import WorkerPool
from .redact import config_secrets, describe_exception, redact, redact_value
from .reentry import inside
from .services import Scope, Service
from .signals import Delivery

logger = logging.getLogger("flask_healthcheck")

#: While checks of a run wait for a thread, the threads running it double
#: this often (seconds).
RAMP_SECONDS = 0.001


class _Execution:
    """One run of one check, shared by every request that joins it."""

    __slots__ = ("check", "timeout", "started", "deadline", "result", "joined")

    def __init__(self, check: Check, timeout: float, now: float) -> None:
        self.check = check
        self.timeout = timeout
        self.started = now
        self.deadline = now + timeout
        #: Set once, under the runner's lock: by the thread that ran the
        #: check, or by a request that gave up on it at its deadline.
        self.result: CheckResult | None = None
        #: Set when ``result`` is; made by the first request that has to wait.
        self.joined: threading.Event | None = None


class _Batch:
    """The checks one request starts, handed out to the threads that run
    them: quick checks run one after another on one thread (a thread
    hand-off costs more than they do), slow ones soon get a thread each."""

    __slots__ = ("lock", "pending", "remaining", "threads", "started", "finished")

    def __init__(self, executions: list[_Execution]) -> None:
        self.lock = threading.Lock()
        self.pending = deque(executions)
        self.remaining = len(executions)
        #: Threads asked for, and threads that have begun taking checks.
        self.threads = 0
        self.started = 0
        self.finished = threading.Event()


@dataclass
class _Slot:
    """What the runner knows of one check."""

    #: The run in flight, if any.
    running: _Execution | None = None
    #: The latest result, and ``time.monotonic()`` when it was had.
    latest: CheckResult | None = None
    latest_at: float = 0.0


class Runner:
    """Runs the checks of one app. Thread-safe; one per app.

    :param services: returns the app's service map for a run.
    :param deliver: queues deliveries (signals, log lines) in order; called
        under the runner's lock, so it must not block.
    :param alerting: False while another process of the host sends the
        alert signals (``check_failed``, ``check_recovered``,
        ``health_changed``): runs then send ``health_checked`` only.
    """

    def __init__(
        self,
        app: Flask,
        services: Callable[[], Mapping[str, Service]],
        deliver: Callable[[list[Delivery]], int],
        *,
        default_timeout: float,
        alerting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.app = app
        self._services = services
        self._deliver = deliver
        self._alerting = alerting
        self.default_timeout = default_timeout
        self._reset()

    def _reset(self) -> None:
        self.pool = WorkerPool(f"healthcheck-{self.app.name}")
        self._thread_state = threading.local()
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        #: The app's status over every check's latest result, for ``health_changed``.
        self._status: Status | None = None
        #: The recent results of this process, for the status page.
        self.history = History()
        #: Each check's status as the host last alerted it, from :meth:`assume`;
        #: what the check's next result is compared with instead of its latest.
        self._assumed: dict[str, Status] = {}

    def after_fork_in_child(self) -> None:
        self._reset()

    # -- public ---------------------------------------------------------------

    def assume(self, statuses: Mapping[str, Status], status: Status | None) -> None:
        """Compare the next result of each check in ``statuses``, and the
        next overall status, with these instead of this process's own: what
        another process of the host last alerted, when this one takes over
        the alerts from it. A recovery it never saw is then still sent, and
        a failure it already sent is no new ``health_changed``."""
        with self._lock:
            self._assumed = dict(statuses)
            self._status = status

    def run(
        self, checks: Sequence[Check], *, max_age: float = 0.0
    ) -> tuple[HealthReport, int]:
        """A report on ``checks`` and the number of its last delivery.

        Each check's latest result is reused while younger than ``max_age``
        seconds; a run of it in flight is joined; otherwise it starts now.
        Returns once every result is in or its check's deadline has passed.
        """
        started_at = time.time()
        plan: list[CheckResult | _Execution] = []
        mine: list[_Execution] = []
        deliveries: list[Delivery] = []
        with self._lock:
            now = time.monotonic()
            for check in checks:
                slot = self._slots.get(check.name)
                if slot is None:
                    slot = self._slots[check.name] = _Slot()
                if slot.latest is not None and now - slot.latest_at < max_age:
                    plan.append(slot.latest)
                elif (execution := slot.running) is None:
                    timeout = check.timeout or self.default_timeout
                    execution = slot.running = _Execution(check, timeout, now)
                    mine.append(execution)
                    plan.append(execution)
                elif now >= execution.deadline:
                    # Hung since an earlier run: report it, don't start it again.
                    result = _still_running(execution, now)
                    self._record(check, result, None, deliveries)
                    plan.append(result)
                else:
                    plan.append(execution)
            if deliveries:
                self._deliver(deliveries)
        batch = _Batch(mine) if mine else None
        if batch is not None:
            self._start(batch)
        results = [
            item if isinstance(item, CheckResult) else self._wait(item) for item in plan
        ]
        report = HealthReport.from_results(results, started_at)
        if not mine and not deliveries:
            # Only results others had or have made: not a run of its own.
            return report, self._deliver([])
        deliveries = []
        with self._lock:
            self._status_changed(deliveries)
            if self._status is not None:
                self.history.record_overall(self._status)
            if signals.health_checked.has_receivers_for(self.app):
                deliveries.append(
                    signals.Send(signals.health_checked, self.app, report=report)
                )
            number = self._deliver(deliveries)
        return report, number

    # -- starting -------------------------------------------------------------

    def _start(self, batch: _Batch) -> None:
        """Hand ``batch`` to one thread, and double the threads every
        :data:`RAMP_SECONDS` while its checks wait and every thread is busy,
        until each check has begun. Quick checks thus cost one hand-off per
        request; slow or hung ones each get their own thread at once."""
        try:
            self._add_threads(batch, 1)
            while not batch.finished.wait(RAMP_SECONDS):
                with batch.lock:
                    waiting = len(batch.pending)
                    # Threads that have not begun yet are no sign of slow checks.
                    stalled = batch.started == batch.threads
                if not waiting:
                    return
                if stalled:
                    self._add_threads(batch, min(waiting, batch.threads))
        except Exception as e:  # "can't start new thread": a pids limit, say
            logger.error("No thread could be started to run health checks: %s", e)
            self._give_up(batch, f"no thread could be started to run it ({e})")

    def _add_threads(self, batch: _Batch, count: int) -> None:
        for _ in range(count):
            batch.threads += 1
            try:
                self.pool.submit(partial(self._drain, batch))
            except BaseException:
                batch.threads -= 1
                raise

    def _give_up(self, batch: _Batch, reason: str) -> None:
        """Fail the checks of ``batch`` that no thread has taken, once: a
        check left waiting for a thread would be "still running" forever."""
        with batch.lock:
            left = list(batch.pending)
            batch.pending.clear()
        for execution in left:
            check = execution.check
            self._finish(execution, _failure(check, reason, 0.0, time.time()), None)
            self._count_done(batch)

    def _drain(self, batch: _Batch) -> None:
        """Run checks of ``batch`` until none is left; in a pool thread."""
        with batch.lock:
            batch.started += 1
        while True:
            with batch.lock:
                if not batch.pending:
                    return
                execution = batch.pending.popleft()
            try:
                self._execute(execution)
            finally:
                self._count_done(batch)

    def _count_done(self, batch: _Batch) -> None:
        with batch.lock:
            batch.remaining -= 1
            if batch.remaining == 0:
                batch.finished.set()

    # -- running one check ----------------------------------------------------

    def _execute(self, execution: _Execution) -> None:
        """Run one check, then the app's teardown: what either raises, or
        how long either takes, is this check's. Never raises."""
        check = execution.check
        started_at = time.time()
        start = time.perf_counter()
        error: BaseException | None = None
        result: CheckResult | None = None
        try:
            value = self._call(check, execution.deadline)
            outcome = interpret(value, none_fails=check.none_fails)
            # Text is made here, on the check's time: a value whose __str__
            # is slow or raises must not hold up or break a response later.
            result = _completed(
                outcome,
                name=check.name,
                duration=time.perf_counter() - start,
                error=self._redact(outcome.error),
                observed_value=redact_value(outcome.observed_value),
                tags=check.tags,
                critical=check.critical,
                started_at=started_at,
            )
        except BaseException as e:  # SystemExit in a check must not end a worker
            error = e
            reason = self._describe(e)
            result = _failure(check, reason, time.perf_counter() - start, started_at)
        finally:
            if result is None:  # only if even the failure could not be made
                result = _failure(check, "the check's result was lost", 0.0, started_at)
            self._finish(execution, result, error)

    def _call(self, check: Check, deadline: float) -> object:
        """Call the check with its services, then the app's teardown, in
        this pool thread's context (see :meth:`_app_context`)."""
        context, app_context = self._app_context()
        return context.run(self._call_in_context, check, deadline, app_context)

    def _call_in_context(
        self, check: Check, deadline: float, context: AppContext
    ) -> object:
        # A health run the check asks for answers from the latest results.
        inside.set(("check", check.name))
        try:
            with Scope(self.app, self._services(), deadline=deadline) as scope:
                return scope.call(
                    check.func, check.kind, scope.arguments(check.parameters)
                )
        finally:
            try:
                # Only what popping the context would do, and only if it
                # does anything: most apps have no teardown, most checks no g.
                app = self.app
                if app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
                    app.do_teardown_appcontext(sys.exc_info()[1])
            finally:
                if context.g.__dict__:
                    context.g = self.app.app_ctx_globals_class()

    def _redact(self, error: str | None) -> str | None:
        # A message the check wrote itself may quote a secret.
        return redact(error, self._secrets()) if error else error

    def _app_context(self) -> tuple[contextvars.Context, AppContext]:
        """The app context of this pool thread, pushed once for the thread's
        life: pushing one per check costs more than a quick check. Each
        check still gets a fresh ``g`` and the app's teardown after it.

        It is pushed in a :class:`contextvars.Context` kept by this runner,
        not in the thread's own: an idle pool thread then holds nothing of
        the app, which a test suite can drop and collect."""
        contexts: tuple[contextvars.Context, AppContext] | None = getattr(
            self._thread_state, "contexts", None
        )
        if contexts is None:
            app_context = self.app.app_context()
            context = contextvars.copy_context()
            context.run(app_context.push)
            contexts = self._thread_state.contexts = (context, app_context)
        return contexts

    def _finish(
        self, execution: _Execution, result: CheckResult, error: BaseException | None
    ) -> None:
        deliveries: list[Delivery] = []
        with self._lock:
            slot = self._slots.get(execution.check.name)
            if slot is not None and slot.running is execution:
                slot.running = None
            if execution.result is None and time.monotonic() > execution.deadline:
                # Over its timeout, whether or not a request noticed in time.
                execution.result = _timed_out(execution)
                self._record(execution.check, execution.result, None, deliveries)
            elif execution.result is None:
                execution.result = result
                self._record(execution.check, result, error, deliveries)
            if execution.result is not result:
                deliveries.append(
                    partial(
                        logger.info,
                        "Health check %r finished %.1f s after it timed out (%s).",
                        execution.check.name,
                        time.monotonic() - execution.deadline,
                        result.status,
                    )
                )
            if execution.joined is not None:
                execution.joined.set()
            if deliveries:
                self._deliver(deliveries)

    def _describe(self, error: BaseException) -> str:
        try:
            return describe_exception(error, self._secrets())
        except BaseException:  # an exception whose ``__str__`` raises
            return f"{type(error).__name__} (its message could not be read)"

    def _secrets(self) -> frozenset[str]:
        return config_secrets(self.app.config)

    # -- waiting --------------------------------------------------------------

    def _wait(self, execution: _Execution) -> CheckResult:
        """The result of ``execution``, or a failure at its deadline."""
        if execution.result is None:
            with self._lock:
                if execution.result is None and execution.joined is None:
                    execution.joined = threading.Event()
            if execution.joined is not None:
                execution.joined.wait(execution.deadline - time.monotonic())
        deliveries: list[Delivery] = []
        with self._lock:
            if execution.result is None:
                execution.result = _timed_out(execution)
                self._record(execution.check, execution.result, None, deliveries)
                self._deliver(deliveries)
            return execution.result

    # -- what a result causes -------------------------------------------------

    def _record(
        self,
        check: Check,
        result: CheckResult,
        error: BaseException | None,
        deliveries: list[Delivery],
    ) -> None:
        """Make ``result`` the check's latest, and add the signals and log
        lines it causes to ``deliveries``. Called under the lock, so results
        are recorded, and their signals sent, in the order they came."""
        slot = self._slots[check.name]
        previous_result = slot.latest
        previous = previous_result.status if previous_result is not None else None
        alerted = self._assumed.pop(check.name, previous)
        slot.latest = result
        slot.latest_at = time.monotonic()
        self.history.record(result)
        app = self.app
        alerting = self._alerting()
        if alerting and result.status == "fail":
            deliveries.append(signals.Send(signals.check_failed, app, result=result))
        elif alerting and alerted == "fail":
            deliveries.append(signals.Send(signals.check_recovered, app, result=result))
        if result.status != previous or result.status == "fail":
            deliveries.append(
                partial(log_transition, app.name, result, previous_result, error)
            )

    def _status_changed(self, deliveries: list[Delivery]) -> None:
        """The app's status is that of every check's latest result; a run
        that changes it sends ``health_changed`` with all of them."""
        latest = [s.latest for s in self._slots.values() if s.latest is not None]
        status = overall_status(latest)
        previous, self._status = self._status, status
        if not self._alerting():
            return
        if status != previous and (previous is not None or status != "pass"):
            report = HealthReport.from_results(latest)
            deliveries.append(
                signals.Send(
                    signals.health_changed, self.app, report=report, previous=previous
                )
            )


def _completed(outcome: CheckResult, **fields: Any) -> CheckResult:
    """``dataclasses.replace(outcome, **fields)`` without its per-field
    checks: ``outcome`` is valid already, and this runs for every check of
    every run (a third of a trivial check's cost; benchmarks/ scenario 3).
    A subclass of CheckResult, which may need its own ``__init__``, gets
    ``replace``."""
    if type(outcome) is not CheckResult:
        return replace(outcome, **fields)
    result = object.__new__(CheckResult)
    values = outcome.__dict__.copy()
    values.update(fields)
    object.__setattr__(result, "__dict__", values)
    return result


def _failure(
    check: Check, reason: str, duration: float, started_at: float
) -> CheckResult:
    return CheckResult(
        name=check.name,
        status="fail",
        duration=duration,
        error=reason,
        tags=check.tags,
        critical=check.critical,
        started_at=started_at,
    )


def _timed_out(execution: _Execution) -> CheckResult:
    reason = f"timed out after {execution.timeout:g} s"
    started_at = time.time() - (time.monotonic() - execution.started)
    return _failure(execution.check, reason, execution.timeout, started_at)


def _still_running(execution: _Execution, now: float) -> CheckResult:
    reason = (
        f"still running after {now - execution.started:.1f} s (timed out"
        f" after {execution.timeout:g} s); not started again"
    )
    return _failure(execution.check, reason, execution.timeout, time.time())
