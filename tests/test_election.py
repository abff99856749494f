"""One refreshing process per host: the lock, and what it means for signals.

Another process of the host is a real one here: a small Python program that
holds the lock file until told to let go. Servers with several workers are
in ``tests/test_fleet.py``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, signals
from flask_healthcheck.hostlock import HostLock, lock_name
from flask_healthcheck.state import get_state

from .helpers import wait_for
from .hostlocks import OtherProcess, taken_elsewhere

INTERVAL = 0.1


@pytest.fixture
def run_dir(tmp_path: Path) -> str:
    return str(tmp_path / "run")


def test_one_process_of_the_host_holds_the_lock(run_dir: str) -> None:
    lock = HostLock(run_dir, "app")
    assert lock.acquire() and lock.held
    assert Path(lock.path).read_text() == f"{os.getpid()}\n"
    assert os.stat(run_dir).st_mode & 0o777 == 0o700
    assert taken_elsewhere(lock.path)
    lock.release()
    assert not lock.held
    assert not taken_elsewhere(lock.path)


def test_another_process_holding_it_keeps_this_one_out(run_dir: str) -> None:
    lock = HostLock(run_dir, "app")
    os.makedirs(run_dir, mode=0o700)
    other = OtherProcess(lock.path)
    try:
        assert not lock.acquire()
        assert not lock.held
    finally:
        other.leave()
    assert lock.acquire(), "the kernel frees the lock of a process that exits"
    lock.release()


def test_the_apps_of_one_process_share_its_lock(run_dir: str) -> None:
    """One app factory called twice in a process: both apps refresh while
    the process holds the lock; it is free once neither holds it."""
    first, second = HostLock(run_dir, "app"), HostLock(run_dir, "app")
    assert first.acquire() and second.acquire()
    first.release()
    assert second.held and taken_elsewhere(second.path)
    second.release()
    assert not taken_elsewhere(second.path)


def test_a_run_dir_others_can_write_means_no_election(
    run_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone who can write the directory could hold the lock and silence
    the alerts: then every process refreshes, as without an election."""
    os.makedirs(run_dir)
    os.chmod(run_dir, 0o777)
    lock = HostLock(run_dir, "app")
    with caplog.at_level(logging.ERROR, "flask_healthcheck"):
        assert lock.acquire() and lock.acquire()
    # This lock's (other tests' threads may log meanwhile).
    errors = [r.getMessage() for r in caplog.records if lock.path in r.getMessage()]
    assert len(errors) == 1
    assert "writable by other users" in errors[0]
    assert "HEALTHCHECK_RUN_DIR" in errors[0]


def test_lock_names_tell_apps_and_urls_apart() -> None:
    assert lock_name("orders", "/health") == lock_name("orders", "/health")
    assert lock_name("orders", "/health") != lock_name("orders", "/healthz")
    assert lock_name("orders", "/health") != lock_name("billing", "/health")
    assert lock_name("orders.app", "/health").startswith("orders.app-")
    assert "/" not in lock_name("a/b c", "/health")


# -- an app whose host has another refreshing process ------------------------


@pytest.fixture
def fleet_app(run_dir: str) -> Iterator[Flask]:
    """An app as a server runs it (not ``TESTING``: tests don't elect)."""
    app = Flask(__name__)
    app.config.update(HEALTHCHECK_INTERVAL=INTERVAL, HEALTHCHECK_RUN_DIR=run_dir)
    yield app
    get_state(app).refresher.stop(timeout=5)


class Recorder:
    """Every signal of one app, as ``(signal name, check or status)``."""

    def __init__(self, app: Flask) -> None:
        self.seen: list[tuple[str, str]] = []
        for signal in (
            signals.check_failed,
            signals.check_recovered,
            signals.health_changed,
            signals.health_checked,
        ):
            signal.connect(self._receiver(signal.name), app, weak=False)

    def _receiver(self, name: str) -> Any:
        def receive(
            sender: Flask,
            result: CheckResult | None = None,
            report: HealthReport | None = None,
            **kwargs: Any,
        ) -> None:
            if result is not None:
                self.seen.append((name, result.name))
            elif report is not None:
                self.seen.append((name, report.status))

        return receive

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


def test_only_the_elected_process_refreshes_and_alerts(
    fleet_app: Flask, run_dir: str
) -> None:
    health = HealthCheck(fleet_app)
    runs: list[float] = []

    @health.check
    def database() -> bool:
        runs.append(0)
        return False

    state = get_state(fleet_app)
    assert state.host_lock is not None
    os.makedirs(run_dir, mode=0o700)
    other = OtherProcess(state.host_lock.path)
    recorder = Recorder(fleet_app)
    try:
        health.start(fleet_app)
        wait_for(lambda: state.refresher.running)
        # Several intervals: the other process is the one that refreshes.
        time.sleep(5 * INTERVAL)
        assert runs == []
        assert not state.refresher.elected
        # A probe here still runs the check, but leaves the alerts to the
        # refreshing process: only ``health_checked``.
        assert fleet_app.test_client().get("/health").status_code == 500
        assert health.wait_for_signals(fleet_app)
        assert len(runs) == 1
        assert recorder.names() == ["health-checked"]
    finally:
        other.leave()
    # That process is gone: this one takes over within an interval.
    wait_for(lambda: state.refresher.elected, INTERVAL + 1)
    wait_for(lambda: "check-failed" in recorder.names(), 2)
    assert health.wait_for_signals(fleet_app)
    assert recorder.seen[1] == ("check-failed", "database")


def test_the_next_refreshing_worker_goes_on_from_what_was_alerted(
    fleet_app: Flask, run_dir: str
) -> None:
    """The refreshing worker alerted "database failing" and died before it
    saw the recovery: the worker that takes over sends the recovery,
    although it never saw the failure itself."""
    health = HealthCheck(fleet_app)

    @health.check
    def database() -> bool:
        return True

    state = get_state(fleet_app)
    assert state.host_lock is not None
    os.makedirs(run_dir, mode=0o700)
    sibling = {  # a worker of the same server: same parent, another pid
        "pid": os.getpid() + 1,
        "ppid": os.getppid(),
        "note": {"status": "fail", "checks": {"database": "fail"}},
    }
    Path(state.host_lock.note_path).write_text(json.dumps(sibling))
    recorder = Recorder(fleet_app)
    health.start(fleet_app)
    wait_for(lambda: "health-checked" in recorder.names(), 2)
    assert health.wait_for_signals(fleet_app)
    assert recorder.seen[:3] == [
        ("check-recovered", "database"),
        ("health-changed", "pass"),
        ("health-checked", "pass"),
    ]
    note = json.loads(Path(state.host_lock.note_path).read_text())
    assert note["pid"] == os.getpid()
    assert note["note"] == {"status": "pass", "checks": {"database": "pass"}}
