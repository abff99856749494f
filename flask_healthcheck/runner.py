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
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from blinker import NamedSignal
from flask import Flask
from flask.ctx import AppContext
from flask.signals import appcontext_tearing_down

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

    __slots__ = ("check", "timeout", "started", "deadline", "result", "escaped")

    def __init__(self, check: Check, timeout: float, now: float) -> None:
        self.check = check
        self.timeout = timeout
        self.started = now
        self.deadline = now + timeout
        #: Set once, by the thread that ran the check, under the runner's lock.
        self.result: CheckResult | None = None
        #: A SystemExit or KeyboardInterrupt raised by the check, re-raised in
        #: the thread that asked for the run rather than swallowed.
        self.escaped: BaseException | None = None


class _Batch:
    """The checks a run starts, handed out to the threads that run them."""

    __slots__ = ("lock", "pending", "remaining", "started", "finished")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: deque[_Execution] = deque()
        #: Checks not finished yet, and threads that have begun draining.
        self.remaining = 0
        self.started = 0
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
        #: Notified whenever a check finishes; guards ``_running`` and results.
        self._finished = threading.Condition(self._lock)
        self._waiters = 0
        self._running: dict[str, _Execution] = {}
        self._flights: dict[tuple[str, ...], _Flight] = {}
        self._cache: OrderedDict[tuple[str, ...], tuple[float, HealthReport]] = (
            OrderedDict()
        )
        self._check_status: dict[str, Status] = {}
        self._overall_status: OrderedDict[tuple[str, ...], Status] = OrderedDict()
        _live_runners.add(self)

    def _after_fork(self) -> None:
        """Start afresh in a forked child: the parent's threads are gone, and
        a lock one of them held at the fork would stay held forever."""
        self.pool = WorkerPool(f"healthcheck-{self.app.name}")
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._waiters = 0
        self._running = {}
        self._flights = {}

    # -- public ---------------------------------------------------------------

    def run(self, checks: Sequence[Check], *, use_cache: bool = True) -> HealthReport:
        """A report on ``checks``: cached, joined from a run in flight, or new."""
        key = tuple(check.name for check in checks)
        use_cache = use_cache and self.cache_ttl > 0
        # A dict read is atomic: a cache hit takes no lock, so threads
        # answering from the cache never queue behind each other.
        if use_cache and (cached := self._cached(key)) is not None:
            return cached
        with self._lock:
            if use_cache and (cached := self._cached(key)) is not None:
                return cached
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

    def _cached(self, key: tuple[str, ...]) -> HealthReport | None:
        entry = self._cache.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.cache_ttl:
            return entry[1]
        return None

    # -- running --------------------------------------------------------------

    def _run_checks(self, checks: Sequence[Check]) -> HealthReport:
        started_at = time.time()
        services = self._services()
        executions: list[tuple[_Execution, bool]] = []
        batch = _Batch()
        with self._lock:
            now = time.monotonic()
            for check in checks:
                execution = self._running.get(check.name)
                if execution is None:
                    timeout = check.timeout or self.default_timeout
                    execution = _Execution(check, timeout, now)
                    self._running[check.name] = execution
                    batch.pending.append(execution)
                # One still running from an earlier run is joined, not restarted.
                executions.append((execution, now > execution.deadline))
        if batch.pending:
            self._drain_concurrently(batch, services)
        results = [self._wait(execution, overdue) for execution, overdue in executions]
        return HealthReport.from_results(results, started_at)

    def _drain_concurrently(
        self, batch: _Batch, services: Mapping[str, Service]
    ) -> None:
        """Run a batch on as many threads as keep every check going.

        One thread starts; each :data:`RAMP_SECONDS` that checks are still
        waiting while every thread is busy, the threads double. Quick checks
        run one after another on one thread (a thread hand-off costs more
        than they do); slow ones soon each have their own, so a run costs
        about its slowest check.
        """
        batch.remaining = len(batch.pending)
        self.pool.max_threads = max(self.pool.max_threads, batch.remaining)

        def drain(ready: Callable[[], None]) -> None:
            with batch.lock:
                batch.started += 1
            self._drain(batch, services, ready)

        self.pool.submit(drain)
        threads = 1
        # Once every check has a thread, each is waited for until its deadline.
        while not batch.finished.wait(RAMP_SECONDS):
            with batch.lock:
                waiting = len(batch.pending)
                # Threads that have not started yet are no sign of slow checks.
                stalled = batch.started == threads
            if not waiting:
                return
            if stalled:
                more = min(waiting, threads)
                for _ in range(more):
                    self.pool.submit(drain)
                threads += more

    def _drain(
        self, batch: _Batch, services: Mapping[str, Service], ready: Callable[[], None]
    ) -> None:
        """Run checks of ``batch`` until none is left; in a worker thread.

        The thread pushes one app context and gives each check a fresh ``g``,
        running the app's teardown functions after each check (pushing a
        context per check would cost more than a quick check itself).
        """
        app = self.app
        context: AppContext | None = None
        with batch.lock:
            execution = batch.pending.popleft() if batch.pending else None
        try:
            while execution is not None:
                if context is None:
                    context = app.app_context()
                    context.push()
                else:  # the previous check's teardown; the last one's is at pop
                    _tear_down(app, context)
                self._execute(execution, services)
                with batch.lock:
                    batch.remaining -= 1
                    last = batch.remaining == 0
                    execution = batch.pending.popleft() if batch.pending else None
                if last:
                    ready()
                    batch.finished.set()
        finally:
            if context is not None:
                context.pop()

    def _wait(self, execution: _Execution, overdue: bool) -> CheckResult:
        if execution.result is None:
            self._wait_for_result(execution, overdue)
        result = execution.result
        if result is not None:
            if execution.escaped is not None:
                raise execution.escaped
            return result
        return self._timed_out(execution, overdue)

    def _wait_for_result(self, execution: _Execution, overdue: bool) -> None:
        with self._finished:
            while execution.result is None:
                remaining = execution.deadline - time.monotonic()
                if overdue or remaining <= 0:
                    break
                self._waiters += 1
                try:
                    self._finished.wait(remaining)
                finally:
                    self._waiters -= 1

    def _timed_out(self, execution: _Execution, overdue: bool) -> CheckResult:
        now = time.monotonic()
        if overdue:
            error = (
                f"still running after {now - execution.started:.1f} s (timed out"
                f" after {execution.timeout:g} s); not started again"
            )
        else:
            error = f"timed out after {execution.timeout:g} s"
        check = execution.check
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
        """Run one check inside the worker's app context; never raises."""
        check = execution.check
        started_at = time.time()
        start = time.perf_counter()
        try:
            scope = Scope(self.app, services, deadline=execution.deadline)
            try:
                value = scope.call(
                    check.func, check.kind, scope.arguments(check.parameters)
                )
            finally:
                try:
                    scope.close()
                except Exception:
                    logger.exception(
                        "Tearing down the services of check %r failed.", check.name
                    )
            outcome = interpret(value)
            if outcome is value and outcome.error:
                # A message the check wrote itself may quote a secret.
                outcome = replace(outcome, error=redact(outcome.error, self._secrets()))
        except Exception as e:
            self._log_failure(check.name, e)
            outcome = CheckResult(
                status="fail", error=describe_exception(e, self._secrets())
            )
        except BaseException as e:
            execution.escaped = e
            outcome = CheckResult(status="fail", error=describe_exception(e))
        result = CheckResult.completed(
            outcome,
            name=check.name,
            duration=time.perf_counter() - start,
            tags=check.tags,
            critical=check.critical,
            started_at=started_at,
        )
        with self._lock:  # the lock of ``_finished``
            execution.result = result
            if self._running.get(check.name) is execution:
                del self._running[check.name]
            if self._waiters:
                self._finished.notify_all()

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


def _tear_down(app: Flask, context: AppContext) -> None:
    """What popping the context does for a check, short of popping it."""
    if app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
        app.do_teardown_appcontext(None)
    if context.g.__dict__:
        context.g = app.app_ctx_globals_class()


def _put_bounded(mapping: OrderedDict[K, V], key: K, value: V) -> None:
    mapping[key] = value
    mapping.move_to_end(key)
    while len(mapping) > MAX_SELECTIONS:
        mapping.popitem(last=False)


#: Every runner of this process, so a forked child can reset them all.
_live_runners: weakref.WeakSet[Runner] = weakref.WeakSet()
_live_refreshers: weakref.WeakSet[BackgroundRefresh] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runner in list(_live_runners):
        runner._after_fork()
    for refresher in list(_live_refreshers):
        refresher._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
        _live_refreshers.add(self)

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
