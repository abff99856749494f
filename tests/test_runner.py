"""How checks run: concurrently, with timeouts, single flight, cache, background.

Speed targets live in ``benchmarks/``; these tests pin behaviour with bounds
loose enough for a busy two-core CI machine.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import HealthCheck
from flask_healthcheck.signals import check_failed
from flask_healthcheck.state import get_state

from .helpers import check_threads


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


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


def test_cache_ttl_reuses_a_finished_run(app: Flask) -> None:
    app.config["HEALTHCHECK_CACHE_TTL"] = 0.3
    health = HealthCheck(app)
    runs = Counter()
    health.add_check(runs.add, name="counted")
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
    app.config["HEALTHCHECK_CACHE_TTL"] = 60
    health = HealthCheck(app)
    runs = Counter()
    health.add_check(runs.add, name="counted")
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
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave at once
        try:
            with app.app_context():
                error = health.run().checks[0].error or ""
            os.write(write_end, error.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1000).decode() == "timed out after 0.2 s"
    os.close(read_end)
    with app.app_context():  # the parent still knows its own check is running
        assert "still running" in (health.run().checks[0].error or "")
