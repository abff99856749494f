"""Threads that can't start, and waits that always end.

A process at its thread limit (RLIMIT_NPROC, a container's pids limit)
makes ``threading.Thread.start`` raise ``RuntimeError("can't start new
thread")``. Here that is injected for a few calls: what is checked is what
the extension does about it, not the failure itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

import flask_healthcheck.delivery
import flask_healthcheck.pool
from flask_healthcheck import HealthCheck, HealthReport
from flask_healthcheck.pool import WorkerPool
from flask_healthcheck.signals import health_checked
from flask_healthcheck.threads import Condition, Event, allocate_lock, start_thread

from .helpers import bounded, wait_for

#: The checks' timeout in these tests, seconds.
TIMEOUT = 2.0


class Refusals:
    """Makes the next ``count`` thread starts of one module fail."""

    def __init__(self) -> None:
        self.count = 0
        self.refused = 0

    def start(self, target: Callable[[], object], name: str) -> None:
        if self.count > 0:
            self.count -= 1
            self.refused += 1
            raise RuntimeError("can't start new thread")
        start_thread(target, name)


@pytest.fixture
def refusals() -> Refusals:
    return Refusals()


@pytest.fixture
def refused_signals(refusals: Refusals, monkeypatch: pytest.MonkeyPatch) -> Refusals:
    monkeypatch.setattr(flask_healthcheck.delivery, "start_thread", refusals.start)
    return refusals


@pytest.fixture
def refused_checks(refusals: Refusals, monkeypatch: pytest.MonkeyPatch) -> Refusals:
    monkeypatch.setattr(flask_healthcheck.pool, "start_thread", refusals.start)
    return refusals


def errors(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and text in r.getMessage()
    ]


def test_a_delivery_thread_that_cant_start_delays_signals_never_ends_them(
    app: Flask, refused_signals: Refusals, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16: the first failed start left the dispatcher believing a
    thread ran (no signal ever again) and answered the probe 500."""
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, PROPAGATE_EXCEPTIONS=False)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    reports: list[HealthReport] = []
    refused_signals.count = 2
    with health_checked.connected_to(lambda app, report: reports.append(report), app):
        with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
            client = FlaskClient(app)  # one that doesn't wait for delivery
            for _ in range(2):  # two runs while no thread can start
                assert client.get("/health").status_code == 200
            assert refused_signals.refused == 2
            assert reports == []
            # Threads again: the next probe delivers what waited, in order.
            assert client.get("/health").status_code == 200
            wait_for(lambda: len(reports) == 3, TIMEOUT, "signals never resumed")
    assert [r.started_at for r in reports] == sorted(r.started_at for r in reports)
    assert len(errors(caplog, "deliver health signals")) == 1


def test_health_run_retries_the_delivery_thread(
    app: Flask, refused_signals: Refusals
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    reports: list[HealthReport] = []
    refused_signals.count = 1  # the put's start fails; the wait's succeeds
    with health_checked.connected_to(lambda app, report: reports.append(report), app):
        with app.app_context():
            health.run()
    assert len(reports) == 1  # delivered before run() returned


def test_a_check_thread_that_cant_start_fails_the_run_with_a_reason(
    app: Flask, refused_checks: Refusals, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    client = app.test_client()
    refused_checks.count = 2
    with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
        for _ in range(2):
            response = client.get("/health")
            assert response.status_code == 500
            error = response.get_json()["data"]["checks"]["database"]["error"]
            assert error == (
                "no thread could be started to run it (can't start new thread)"
            )
        assert client.get("/health").status_code == 200  # the next run tries again
    assert len(errors(caplog, "No thread could be started to run health checks")) == 1


def test_idle_pool_threads_exit_and_are_reused_meanwhile() -> None:
    pool = WorkerPool("test-idle", idle_seconds=0.2)
    done: list[int] = []
    for number in range(5):
        finished = Event()

        def task(number: int = number, finished: Event = finished) -> None:
            done.append(number)
            finished.set()

        pool.submit(task)
        assert finished.wait(TIMEOUT)
    assert done == [0, 1, 2, 3, 4]
    wait_for(lambda: pool.thread_count <= 1, TIMEOUT)  # one thread, reused
    wait_for(lambda: pool.thread_count == 0, TIMEOUT, "idle threads never exited")


def test_a_task_submitted_as_a_thread_idles_out_is_run() -> None:
    """The idle wait timed out but ``submit`` claimed the thread first:
    the thread takes the task without waiting again."""
    pool = WorkerPool("test-race", idle_seconds=0.01)
    ran = Event()
    for _ in range(200):
        pool.submit(lambda: None)
        time.sleep(0.01)  # about the idle time: both orders happen
    pool.submit(ran.set)
    assert ran.wait(TIMEOUT)


def test_a_closed_pool_still_runs_what_it_is_given() -> None:
    """``close()`` lets idle threads exit at once; a thread it woke must
    not stay listed as idle, or the next task would be handed to no one."""
    pool = WorkerPool("test-closed", idle_seconds=60)
    first = Event()
    pool.submit(first.set)
    assert first.wait(TIMEOUT)
    wait_for(lambda: len(pool._idle) == 1, TIMEOUT)
    pool.close()
    wait_for(lambda: pool.thread_count == 0, TIMEOUT, "the idle thread stayed")
    second = Event()
    pool.submit(second.set)
    assert second.wait(TIMEOUT), "a task was handed to a thread that had exited"


def test_waits_end_at_their_deadline() -> None:
    event = Event()
    start = time.monotonic()
    assert not event.wait(0.05)
    assert not event.wait(-1)  # a deadline already past
    lock = allocate_lock()
    condition = Condition(lock)
    with condition:
        condition.wait(0.05)
    assert time.monotonic() - start >= 0.1
    threading.Timer(0.05, event.set).start()
    assert event.wait(TIMEOUT)


def test_threads_that_never_run_dont_hold_a_probe_past_its_deadline(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread started but never scheduled (a frozen or thread-starved
    process): the probe answers at its checks' timeout, not never."""
    app.config.update(HEALTHCHECK_TIMEOUT=0.2, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    monkeypatch.setattr(flask_healthcheck.pool, "start_thread", lambda *args: None)
    response = bounded(lambda: FlaskClient(app).get("/health"), TIMEOUT, "the probe")
    assert response.status_code == 500
    error = response.get_json()["data"]["checks"]["database"]["error"]
    assert error == "timed out after 0.2 s"
