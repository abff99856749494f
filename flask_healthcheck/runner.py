"""Running checks: concurrently, with timeouts, single flight and a cache.

Data flows one way: a view (or the CLI, or the background thread) asks the
app's :class:`Runner` for a report on a selection of checks; the runner
builds each check's services in a worker thread inside an app context and
turns what happened into :class:`CheckResult` objects; then it tells the
signal subscribers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from blinker import NamedSignal
from flask import Flask

from . import signals
from .checks import Check, CheckResult, HealthReport, Status, interpret
from .pool import WorkerPool
from .redact import config_secrets, describe_exception, redact
from .services import Scope, Service

logger = logging.getLogger("flask_healthcheck")

K = TypeVar("K")
V = TypeVar("V")

#: How many selections (endpoint, tag, exclude combinations) keep a cached
#: report and a previous status. Bounded so query strings can't grow memory.
MAX_SELECTIONS = 64

#: While checks of a run wait for a thread, the threads running it double
#: this often (seconds).
RAMP_SECONDS = 0.001


class _Execution:
    """One check running in a worker thread; shared by runs that overlap."""

    __slots__ = ("check", "timeout", "started", "deadline", "done", "result", "escaped")

    def __init__(self, check: Check, timeout: float) -> None:
        self.check = check
        self.timeout = timeout
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.done = threading.Event()
        self.result: CheckResult | None = None
        #: A SystemExit or KeyboardInterrupt raised by the check, re-raised in
        #: the thread that asked for the run rather than swallowed.
        self.escaped: BaseException | None = None


class _Batch:
    """The checks a run starts, handed out to the threads that run them."""

    __slots__ = ("lock", "pending", "remaining", "finished")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: deque[_Execution] = deque()
        self.remaining = 0
        self.finished = threading.Event()


class _Flight:
    """A run in progress that concurrent requests for the same checks join."""

    __slots__ = ("done", "report", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.report: HealthReport | None = None
        self.error: BaseException | None = None


class Runner:
    """Runs checks for one app. Thread-safe; one per app."""

    def __init__(
        self,
        app: Flask,
        services: Callable[[], Mapping[str, Service]],
        *,
        default_timeout: float,
        cache_ttl: float,
    ) -> None:
        self.app = app
        self._services = services
        self.default_timeout = default_timeout
        self.cache_ttl = cache_ttl
        self.pool = WorkerPool(f"healthcheck-{app.name}")
        self._lock = threading.Lock()
        self._running: dict[str, _Execution] = {}
        self._flights: dict[tuple[str, ...], _Flight] = {}
        self._cache: OrderedDict[tuple[str, ...], tuple[float, HealthReport]] = (
            OrderedDict()
        )
        self._check_status: dict[str, Status] = {}
        self._overall_status: OrderedDict[tuple[str, ...], Status] = OrderedDict()

    # -- public ---------------------------------------------------------------

    def run(self, checks: Sequence[Check], *, use_cache: bool = True) -> HealthReport:
        """A report on ``checks``: cached, joined from a run in flight, or new."""
        key = tuple(check.name for check in checks)
        with self._lock:
            if use_cache and self.cache_ttl > 0:
                cached = self._cache.get(key)
                if cached is not None and time.monotonic() - cached[0] < self.cache_ttl:
                    return cached[1]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.report is not None
            return flight.report
        try:
            report = flight.report = self._run_checks(checks)
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                del self._flights[key]
                if flight.report is not None and self.cache_ttl > 0:
                    _put_bounded(self._cache, key, (time.monotonic(), flight.report))
            flight.done.set()
        self._notify(key, report)
        return report

    # -- running --------------------------------------------------------------

    def _run_checks(self, checks: Sequence[Check]) -> HealthReport:
        started_at = time.time()
        services = self._services()
        executions: list[_Execution] = []
        batch = _Batch()
        with self._lock:
            for check in checks:
                execution = self._running.get(check.name)
                if execution is None:
                    timeout = check.timeout or self.default_timeout
                    execution = self._running[check.name] = _Execution(check, timeout)
                    batch.pending.append(execution)
                executions.append(execution)
        if batch.pending:
            self._drain_concurrently(batch, services)
        results = [self._wait(execution) for execution in executions]
        return HealthReport.from_results(results, started_at)

    def _drain_concurrently(
        self, batch: _Batch, services: Mapping[str, Service]
    ) -> None:
        """Run a batch on as many threads as keep every check going.

        One thread starts; each :data:`RAMP_SECONDS` that checks are still
        waiting, the threads double. Quick checks run one after another on
        one thread (a thread hand-off costs more than they do); slow ones
        soon each have their own, so a run costs about its slowest check.
        """
        batch.remaining = len(batch.pending)
        last_deadline = max(e.deadline for e in batch.pending)

        def drain() -> None:
            while True:
                with batch.lock:
                    if not batch.pending:
                        return
                    execution = batch.pending.popleft()
                self._execute(execution, services)
                with batch.lock:
                    batch.remaining -= 1
                    if batch.remaining == 0:
                        batch.finished.set()

        self.pool.submit(drain)
        threads = 1
        while not batch.finished.wait(RAMP_SECONDS):
            with batch.lock:
                waiting = len(batch.pending)
            if waiting:
                for _ in range(min(waiting, threads)):
                    self.pool.submit(drain)
                threads += min(waiting, threads)
            elif time.monotonic() >= last_deadline:
                return
            else:
                batch.finished.wait(last_deadline - time.monotonic())
                return

    def _wait(self, execution: _Execution) -> CheckResult:
        check = execution.check
        remaining = execution.deadline - time.monotonic()
        if execution.done.wait(remaining if remaining > 0 else 0):
            if execution.escaped is not None:
                raise execution.escaped
            assert execution.result is not None
            return execution.result
        now = time.monotonic()
        if now - execution.deadline > 0.05:
            error = (
                f"still running after {now - execution.started:.1f} s (timed out"
                f" after {execution.timeout:g} s); not started again"
            )
        else:
            error = f"timed out after {execution.timeout:g} s"
        return CheckResult(
            name=check.name,
            status="fail",
            duration=execution.timeout,
            error=error,
            tags=check.tags,
            critical=check.critical,
            started_at=time.time() - (now - execution.started),
        )

    def _execute(self, execution: _Execution, services: Mapping[str, Service]) -> None:
        """Run one check in a worker thread; never raises."""
        check = execution.check
        started_at = time.time()
        start = time.perf_counter()
        try:
            with self.app.app_context():
                scope = Scope(self.app, services, deadline=execution.deadline)
                try:
                    value = scope.call(check.func, scope.arguments(check.parameters))
                    outcome = interpret(value)
                    if isinstance(value, CheckResult) and value.error:
                        # A message the check wrote itself may quote a secret.
                        outcome = replace(
                            value, error=redact(value.error, self._secrets())
                        )
                finally:
                    try:
                        scope.close()
                    except Exception:
                        logger.exception(
                            "Tearing down the services of check %r failed.", check.name
                        )
        except Exception as e:
            self._log_failure(check.name, e)
            outcome = CheckResult(
                status="fail", error=describe_exception(e, self._secrets())
            )
        except BaseException as e:
            execution.escaped = e
            outcome = CheckResult(status="fail", error=describe_exception(e))
        execution.result = replace(
            outcome,
            name=check.name,
            duration=time.perf_counter() - start,
            tags=check.tags,
            critical=check.critical,
            started_at=started_at,
        )
        with self._lock:
            if self._running.get(check.name) is execution:
                del self._running[check.name]
        execution.done.set()

    def _secrets(self) -> frozenset[str]:
        return config_secrets(self.app.config)

    def _log_failure(self, name: str, error: Exception) -> None:
        # A traceback when a check starts failing; one line while it goes on.
        if self._check_status.get(name) != "fail":
            logger.warning("Health check %r failed.", name, exc_info=error)
        else:
            logger.info(
                "Health check %r is still failing: %s", name, type(error).__name__
            )

    # -- signals --------------------------------------------------------------

    def _notify(self, key: tuple[str, ...], report: HealthReport) -> None:
        with self._lock:
            previous_checks = {
                r.name: self._check_status.get(r.name) for r in report.checks
            }
            for result in report.checks:
                self._check_status[result.name] = result.status
            previous = self._overall_status.get(key)
            _put_bounded(self._overall_status, key, report.status)
        for result in report.checks:
            if result.status == "fail":
                self._send(signals.check_failed, result=result)
            elif previous_checks[result.name] == "fail":
                self._send(signals.check_recovered, result=result)
        if report.status != previous and (
            previous is not None or report.status != "pass"
        ):
            self._send(signals.health_changed, report=report, previous=previous)
        self._send(signals.health_checked, report=report)

    def _send(self, signal: NamedSignal, **kwargs: object) -> None:
        """Call each subscriber on its own, so a broken one changes nothing."""
        for receiver in signal.receivers_for(self.app):
            try:
                receiver(self.app, **kwargs)
            except Exception:
                logger.exception("A subscriber of the %r signal raised.", signal.name)


def _put_bounded(mapping: OrderedDict[K, V], key: K, value: V) -> None:
    mapping[key] = value
    mapping.move_to_end(key)
    while len(mapping) > MAX_SELECTIONS:
        mapping.popitem(last=False)


class BackgroundRefresh:
    """Runs every check every ``interval`` seconds in one daemon thread.

    Started lazily by the first request (so a pre-fork server starts it in
    each worker that serves, not in the master) or by ``health.start()``.
    A fork is noticed by the process id, and the child starts its own.
    """

    def __init__(
        self, runner: Runner, checks: Callable[[], Sequence[Check]], interval: float
    ) -> None:
        self.runner = runner
        self.checks = checks
        self.interval = interval
        self.latest: HealthReport | None = None
        self.first_run = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pid = 0

    @property
    def running(self) -> bool:
        return (
            self._thread is not None
            and self._thread.is_alive()
            and self._pid == os.getpid()
        )

    def start(self) -> None:
        """Start the thread unless this process already runs it."""
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._loop,
                args=(self._stop,),
                name=f"healthcheck-refresh-{self.runner.app.name}",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread; waits up to ``timeout`` for a run in progress."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with self.runner.app.app_context():
                    self.latest = self.runner.run(self.checks(), use_cache=False)
            except Exception:
                logger.exception("The background health run failed.")
            finally:
                self.first_run.set()
            stop.wait(self.interval)
