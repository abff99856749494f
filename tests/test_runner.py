"""How checks run: concurrently, with timeouts, single flight, cache, background.

Speed targets live in ``benchmarks/``; these tests pin behaviour with bounds
loose enough for a busy two-core CI machine.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import InitVar, dataclass, fields, replace
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

import flask_healthcheck.pool
from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.signals import check_failed, health_changed
from flask_healthcheck.state import get_state

from .children import in_child
from .helpers import (
    FAILURE,
    SUCCESS,
    Bounded,
    Counter,
    FirstCallDiffers,
    bounded,
    check_threads,
    detailed_health,
    wait_for,
)


def test_checks_of_one_run_execute_concurrently(
    app: Flask, health: HealthCheck
) -> None:
    for i in range(20):
        health.add_check(lambda: time.sleep(0.2), name=f"slow{i}")
    with app.app_context():
        start = time.perf_counter()
        report = health.run()
        elapsed = time.perf_counter() - start
    assert report.status == "pass"
    assert elapsed < 1.5, "20 checks of 0.2 s ran one after another"


def test_each_check_runs_in_a_worker_thread(app: Flask, health: HealthCheck) -> None:
    threads = []
    health.add_check(lambda: threads.append(threading.current_thread()), name="c")
    with app.app_context():
        health.run()
    assert threads and threads[0] is not threading.current_thread()
    assert threads[0].daemon


def test_a_check_is_failed_at_its_timeout(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    health.add_check(lambda: release.wait(5), name="hung", timeout=0.3)
    health.add_check(lambda: True, name="quick")
    with app.app_context():
        start = time.perf_counter()
        report = health.run()
        elapsed = time.perf_counter() - start
    hung, quick = report.checks
    assert (hung.status, hung.error) == ("fail", "timed out after 0.3 s")
    assert hung.duration == 0.3
    assert quick.status == "pass"
    assert elapsed < 2.0


def test_default_timeout_comes_from_config(
    app: Flask, release: threading.Event
) -> None:
    app.config["HEALTHCHECK_TIMEOUT"] = 0.2
    health = HealthCheck(app)
    health.add_check(lambda: release.wait(5), name="hung")
    with app.app_context():
        assert health.run().checks[0].error == "timed out after 0.2 s"


def test_async_checks_time_out_too(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    @health.check(timeout=0.2)
    async def sleepy() -> bool:
        await asyncio.sleep(3)
        return True

    with app.app_context():
        result = health.run().checks[0]
    assert result.error == "timed out after 0.2 s"


def test_a_hung_check_is_not_started_again(
    app: Flask, release: threading.Event
) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    started = Counter()

    def hung() -> bool:
        started.add()
        return release.wait(10)

    health.add_check(hung, timeout=0.2)
    client = app.test_client()
    client.get("/health")
    threads_after_first = threading.active_count()
    check_threads_after_first = check_threads(app)
    for _ in range(30):
        start = time.perf_counter()
        response = client.get("/health")
        assert response.status_code == 500
        assert time.perf_counter() - start < 0.5  # answered at once, not waited on
    assert started.value == 1
    assert threading.active_count() <= threads_after_first
    assert check_threads(app) <= check_threads_after_first
    error = client.get("/health").json["data"]["checks"]["hung"]["error"]  # type: ignore[index]
    assert error.startswith("still running after")
    assert "not started again" in error
    release.set()
    time.sleep(0.2)
    assert client.get("/health").status_code == 200
    assert started.value == 2


def test_concurrent_requests_share_one_run(app: Flask, health: HealthCheck) -> None:
    runs = Counter()

    def slow() -> bool:
        runs.add()
        time.sleep(0.5)
        return True

    health.add_check(slow)
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def probe() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.get("/health").status_code)

    threads = [threading.Thread(target=probe) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    assert runs.value == 1


def counted_health(app: Flask, cache_ttl: float) -> tuple[HealthCheck, Counter]:
    """The app's extension with a cache and one check that counts its runs."""
    app.config["HEALTHCHECK_CACHE_TTL"] = cache_ttl
    health = HealthCheck(app)
    runs = Counter()
    health.add_check(runs.add, name="counted")
    return health, runs


def test_cache_ttl_reuses_a_finished_run(app: Flask) -> None:
    health, runs = counted_health(app, cache_ttl=0.3)
    client = app.test_client()
    for _ in range(5):
        client.get("/health")
    assert runs.value == 1
    time.sleep(0.35)
    client.get("/health")
    assert runs.value == 2


def test_without_cache_every_request_runs(
    app: Flask, health: HealthCheck, client: Any
) -> None:
    runs = Counter()
    health.add_check(runs.add, name="counted")
    for _ in range(3):
        client.get("/health")
    assert runs.value == 3


def test_health_run_ignores_the_cache(app: Flask) -> None:
    health, runs = counted_health(app, cache_ttl=60)
    with app.app_context():
        health.run()
        health.run()
    assert runs.value == 2


def test_background_refresh_runs_without_probes(app: Flask) -> None:
    app.config["HEALTHCHECK_INTERVAL"] = 0.05
    health = HealthCheck(app)
    runs = Counter()
    flags = {"ok": True}

    def flaky() -> bool:
        runs.add()
        return flags["ok"]

    health.add_check(flaky)
    failures: list[Any] = []
    with check_failed.connected_to(lambda sender, result: failures.append(result), app):
        health.start(app)
        health.start(app)  # one thread per app, never two
        threads = [t for t in threading.enumerate() if "refresh" in t.name]
        assert len(threads) == 1
        flags["ok"] = False
        deadline = time.monotonic() + 3
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        assert failures, "the background run did not fire check_failed"
        client = app.test_client()
        before = runs.value
        assert client.get("/health").status_code == 500  # from the latest run
        assert runs.value - before <= 2
        health.stop(app)
    time.sleep(0.15)
    stopped_at = runs.value
    time.sleep(0.15)
    assert runs.value == stopped_at


def test_background_refresh_starts_on_the_first_request(app: Flask) -> None:
    # A served app: requests start the refresh of apps without TESTING.
    app.config.update(TESTING=False, HEALTHCHECK_RUN_DIR=None)
    app.config["HEALTHCHECK_INTERVAL"] = 10
    health = HealthCheck(app)
    runs = Counter()
    health.add_check(runs.add, name="counted")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    assert get_state(app).refresher.running
    # The probe and the refresh's first run joined one run, or ran one after
    # the other; later probes answer from the latest run.
    ran = runs.value
    assert ran in (1, 2)
    assert client.get("/health").status_code == 200
    assert runs.value == ran
    health.stop(app)
    assert not get_state(app).refresher.running


def test_start_needs_an_interval(app: Flask, health: HealthCheck) -> None:
    from flask_healthcheck import ConfigurationError

    with pytest.raises(ConfigurationError, match="HEALTHCHECK_INTERVAL"):
        health.start(app)


def test_pool_threads_are_reused(app: Flask, health: HealthCheck) -> None:
    for i in range(5):
        health.add_check(lambda: time.sleep(0.05), name=f"c{i}")
    before = check_threads(app)  # idle ones of other tests' apps of this name
    with app.app_context():
        health.run()
        for _ in range(5):
            health.run()
    assert check_threads(app) - before <= 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_afresh(app: Flask, release: threading.Event) -> None:
    """A pre-fork server may fork while a check runs: the child must not
    wait for (or report as still running) a thread that only the parent has."""
    health = HealthCheck(app)
    health.add_check(lambda: release.wait(10), name="hung", timeout=0.2)
    with app.app_context():
        assert health.run().checks[0].error == "timed out after 0.2 s"

    def in_the_child() -> str:
        with app.app_context():
            return health.run().checks[0].error or ""

    assert in_child("os.fork", in_the_child) == "timed out after 0.2 s"
    with app.app_context():  # the parent still knows its own check is running
        assert "still running" in (health.run().checks[0].error or "")


# -- timeouts ------------------------------------------------------------------


#: The checks' default timeout in these tests, seconds.
TIMEOUT = 0.2


#: What a probe may take beyond its checks' timeout on a busy machine.
MARGIN = 0.5


def get(app: Flask, path: str, timeout: float = TIMEOUT + MARGIN) -> TestResponse:
    return bounded(lambda: app.test_client().get(path), timeout, f"GET {path}")


def details(app: Flask, path: str = "/health") -> dict[str, Any]:
    response = get(app, path)
    return response.json["data"]["checks"]  # type: ignore[index,no-any-return]


def test_a_check_that_overruns_its_timeout_fails_whatever_its_siblings(
    app: Flask,
) -> None:
    """``fast`` has a 0.1 s timeout and takes 0.3 s. Alone it fails; next
    to a check registered before it that takes 0.6 s (within its own 2 s
    timeout) it passed with a duration three times its timeout."""
    health = HealthCheck(app)
    health.add_check(lambda: time.sleep(0.6), name="slow", timeout=2.0)
    health.add_check(lambda: time.sleep(0.3), name="fast", timeout=0.1)

    def run() -> HealthReport:
        with app.app_context():
            return health.run()

    report = bounded(run, 2.0 + MARGIN, "health.run()")
    fast = {r.name: r for r in report.checks}["fast"]
    assert (fast.status, fast.error) == ("fail", "timed out after 0.1 s")
    assert fast.duration == pytest.approx(0.1)


def test_each_probe_is_bounded_by_its_own_checks_timeouts(
    app: Flask, release: threading.Event
) -> None:
    """Checks with different timeouts, two of them hung: each per-check URL
    answers within that check's timeout, however long a sibling's is."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(lambda: release.wait(), name="hung_long", timeout=1.5)
    health.add_check(lambda: release.wait(), name="hung_short", timeout=0.1)
    health.add_check(lambda: True, name="quick", timeout=0.1)
    # A probe of everything starts the long hang and waits for it...
    everything = Bounded(lambda: app.test_client().get("/health"), "GET /health")
    time.sleep(0.05)
    # ...while probes of the other checks answer in their own time.
    for path, limit in [("/health/quick", 0.1), ("/health/hung_short", 0.1)]:
        start = time.perf_counter()
        response = get(app, path, limit + MARGIN)
        assert time.perf_counter() - start < limit + 0.15, path
        assert response.status_code == (200 if path.endswith("quick") else 500)
    start = time.perf_counter()
    assert get(app, "/health?exclude=hung_long").status_code == 500
    assert time.perf_counter() - start < 0.1 + 0.15
    assert everything.result(1.5 + MARGIN, "GET /health").status_code == 500


# -- a check's own misbehaviour never wedges it --------------------------------


@dataclass(frozen=True)
class LatencyResult(CheckResult):
    """A user's own ``CheckResult``: built from a latency in seconds."""

    latency: InitVar[float | None] = None

    def __post_init__(self, latency: float | None) -> None:
        super().__post_init__()
        if latency is None:
            raise ValueError("LatencyResult needs latency=")
        object.__setattr__(self, "observed_value", latency * 1000)
        object.__setattr__(self, "observed_unit", "ms")


def test_a_returned_result_the_runner_cant_copy_fails_once_not_forever(
    app: Flask,
) -> None:
    health = detailed_health(app, TIMEOUT)
    database = FirstCallDiffers[CheckResult](
        lambda: LatencyResult(latency=0.004), lambda: CheckResult(status="pass")
    )
    health.add_check(database, name="database")
    first = details(app)["database"]
    assert first["status"] == "fail"
    second = details(app)["database"]
    assert second["status"] == "pass", f"the check is wedged: {second['error']}"
    assert database.calls == 2


def test_a_result_has_every_field_its_check_and_value_give(app: Flask) -> None:
    """The runner builds each result's fields itself (not through the
    dataclass's ``__init__``): none is missing, each is the check's or the
    returned value's."""
    health = HealthCheck(app)
    returned = CheckResult(
        status="warn", error="disk 91% full", observed_value=91, observed_unit="%"
    )
    health.add_check(lambda: returned, name="disk", critical=False, tags=["storage"])
    before = time.time()
    with app.app_context():
        (result,) = health.run().checks
    assert set(vars(result)) == {f.name for f in fields(CheckResult)}
    assert result == replace(
        returned,
        name="disk",
        tags=frozenset({"storage"}),
        critical=False,
        duration=result.duration,
        started_at=result.started_at,
    )
    assert 0 <= result.duration < 1
    assert before - 1 <= result.started_at <= time.time() + 1
    assert "disk" in repr(result)


@dataclass(frozen=True)
class AmbiguousResult(CheckResult):
    """A user's own ``CheckResult`` whose truth can't be read, as a numpy
    array's can't: nothing may ask a result whether it is true."""

    def __bool__(self) -> bool:
        raise TypeError("the truth value of a result is ambiguous")


@pytest.mark.parametrize("threads", [True, False], ids=["threads", "inline"])
def test_a_result_whose_truth_cant_be_read_is_reported(
    app: Flask, threads: bool
) -> None:
    app.config["HEALTHCHECK_THREADS"] = threads
    health = HealthCheck(app)
    health.add_check(lambda: AmbiguousResult(status="warn"), name="ambiguous")
    with app.app_context():
        report = health.run()
    (result,) = report.checks
    assert (type(result), result.status, report.status) == (
        AmbiguousResult,
        "warn",
        "warn",
    )
    assert app.test_client().get("/health").status_code == 200


class Refusing:
    """Starting a thread fails, as when a container hits its pids limit."""

    refuse = True


def refusing_start(target: Callable[[], object], name: str) -> None:
    if Refusing.refuse:
        raise RuntimeError("can't start new thread")
    threading.Thread(target=target, name=name, daemon=True).start()


def test_a_thread_that_cant_start_fails_one_probe_not_the_check_forever(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in production: an error in the view is a 500 page, not an exception.
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, PROPAGATE_EXCEPTIONS=False)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    # The pool's own threads only: the test's threads must start.
    monkeypatch.setattr(flask_healthcheck.pool, "start_thread", refusing_start)
    Refusing.refuse = True
    response = get(app, "/health")
    assert (response.status_code, response.data) == (500, FAILURE)
    assert response.headers["Cache-Control"] == "no-store"
    Refusing.refuse = False  # the process has threads to spare again
    wait_for(lambda: get(app, "/health").status_code == 200, 2 * (TIMEOUT + MARGIN))


class Unbooleanable:
    """A numpy-like value: its truth can't be had."""

    def __bool__(self) -> bool:
        raise ValueError("The truth value of an array is ambiguous")


class Incomparable:
    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    __hash__ = object.__hash__


class Unprintable(Exception):
    def __str__(self) -> str:
        raise KeyboardInterrupt  # even a BaseException from __str__


class Huge(Exception):
    def __str__(self) -> str:
        return "password=hunter2 " + "x" * 1_000_000


def _generator() -> Iterator[int]:
    yield 1


async def _never_awaited() -> bool:
    return False


def test_weird_return_values_and_exceptions_fail_or_pass_without_wedging(
    app: Flask,
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(lambda: Unbooleanable(), name="array")
    health.add_check(lambda: Incomparable(), name="incomparable")
    health.add_check(lambda: _generator(), name="generator_object")
    health.add_check(lambda: _never_awaited(), name="coroutine")
    health.add_check(functools.partial(_raise, Unprintable()), name="unprintable")
    health.add_check(functools.partial(_raise, Huge()), name="huge")
    for round_ in range(3):
        start = time.perf_counter()
        checks = details(app)
        assert time.perf_counter() - start < TIMEOUT, f"round {round_}: a wedge"
        status = {name: c["status"] for name, c in checks.items()}
        assert status == {
            "array": "fail",
            "incomparable": "pass",
            "generator_object": "pass",
            "coroutine": "fail",  # awaited: it returns False
            "unprintable": "fail",
            "huge": "fail",
        }, f"round {round_}"
        assert checks["array"]["error"].startswith("ValueError")
        assert checks["unprintable"]["error"].startswith("Unprintable")
        assert "hunter2" not in checks["huge"]["error"]
        assert len(checks["huge"]["error"]) <= 500


def _raise(error: BaseException) -> None:
    raise error


# -- threads -------------------------------------------------------------------


@pytest.mark.slow
def test_a_probe_storm_over_hung_checks_keeps_threads_bounded(
    app: Flask, release: threading.Event
) -> None:
    """Four ways to hang (check, async check, factory, teardown), 1,800
    probes over nine URLs from six threads: one thread per hung check, and
    every probe fast once the first timeouts are known."""
    app.config.update(
        HEALTHCHECK_TIMEOUT=0.05,
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
    )
    health = HealthCheck(app)
    health.add_check(lambda: release.wait(), name="hung", tags=["ready"])

    async def hung_async() -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)

    health.add_check(hung_async, name="hung_async", tags=["ready"])

    def hung_factory() -> str:
        release.wait()
        return "connection"

    def hung_teardown() -> Iterator[str]:
        yield "connection"
        release.wait()

    health.add_service("slow_factory", hung_factory)
    health.add_service("slow_teardown", hung_teardown)
    health.add_check(lambda slow_factory: True, name="factory")
    health.add_check(lambda slow_teardown: True, name="teardown", tags=["live"])
    health.add_check(lambda: True, name="ok", tags=["live", "ready"])
    urls = [
        "/health",
        "/livez",
        "/readyz",
        "/health/hung",
        "/health/ok",
        "/health?exclude=ok",
        "/health?exclude=hung&exclude=hung_async",
        "/readyz/hung_async",
        "/livez/ok",
    ]
    before = threading.active_count()
    slowest = [0.0]

    def prober(offset: int) -> None:
        client = app.test_client()
        for number in range(300):
            start = time.perf_counter()
            client.get(urls[(number + offset) % len(urls)])
            slowest[0] = max(slowest[0], time.perf_counter() - start)

    probers = [Bounded(functools.partial(prober, k)) for k in range(6)]
    peak = 0
    while not all(p.done() for p in probers):
        peak = max(peak, threading.active_count() - before - len(probers))
        time.sleep(0.005)
    for p in probers:
        p.result(10, "a prober")
    # Four hung checks, at most one idle pool thread, the signal thread and
    # the app's event loop.
    assert peak <= 4 + 3, f"{peak} extra threads"
    assert slowest[0] < 0.05 + MARGIN


# -- runs from subscribers -----------------------------------------------------


def test_health_run_inside_subscribers_never_deadlocks(app: Flask) -> None:
    """A subscriber (on the signal thread) that runs the checks again."""
    health = HealthCheck(app)
    flips = {"ok": False}
    health.add_check(lambda: flips["ok"], name="database")
    seen: list[str] = []

    def rerun(sender: Flask, report: HealthReport, previous: str | None) -> None:
        with sender.app_context():
            seen.append(health.run().status)

    def run() -> str:
        with app.app_context():
            return health.run().status

    with health_changed.connected_to(rerun, app):
        assert bounded(run, 5, "health.run()") == "fail"
        flips["ok"] = True
        assert bounded(run, 5, "health.run()") == "pass"
        wait_for(lambda: seen == ["fail", "pass"], 5, f"saw {seen}")
        assert get(app, "/health").data == SUCCESS


# -- the background refresher --------------------------------------------------


def test_stop_start_storm_leaves_one_refresher(app: Flask) -> None:
    app.config["HEALTHCHECK_INTERVAL"] = 0.01
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    refresher = get_state(app).refresher

    def toggler(number: int) -> None:
        for _ in range(30):
            if number % 2:
                health.start(app)
            else:
                health.stop(app)

    def prober() -> None:
        client = app.test_client()
        for _ in range(30):
            client.get("/health")

    workers = [Bounded(functools.partial(toggler, k)) for k in range(4)]
    workers.append(Bounded(prober))
    for w in workers:
        w.result(10, "a toggler")
    health.start(app)
    wait_for(lambda: _refresh_threads(app) == 1, 2, "not exactly one refresher")
    health.stop(app)
    assert not refresher.running
    assert get(app, "/health").status_code == 200
    assert not refresher.running, "a request restarted a stopped refresher"
    wait_for(lambda: _refresh_threads(app) == 0, 2)


def _refresh_threads(app: Flask) -> int:
    name = f"healthcheck-refresh-{app.name}"
    return sum(t.name == name and t.is_alive() for t in threading.enumerate())


def test_a_stop_racing_the_first_request_is_not_undone(app: Flask) -> None:
    """The interleaving made deterministic: the first request is about to
    start the refresher when another thread's ``health.stop()`` lands."""
    # A served app: requests start the refresh of apps without TESTING.
    app.config.update(TESTING=False, HEALTHCHECK_RUN_DIR=None)
    app.config["HEALTHCHECK_INTERVAL"] = 0.05
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    refresher = get_state(app).refresher
    start_thread = refresher._start_thread
    stopping: list[Bounded[None]] = []

    def start_with_a_concurrent_stop() -> None:
        stopping.append(Bounded(lambda: health.stop(app), "health.stop()"))
        time.sleep(0.05)  # the stop is under way when the thread starts
        start_thread()

    refresher._start_thread = start_with_a_concurrent_stop  # type: ignore[method-assign]
    assert get(app, "/health").status_code == 200
    stopping[0].result(2, "health.stop()")
    assert not refresher.running, "stopped by health.stop(), restarted anyway"
