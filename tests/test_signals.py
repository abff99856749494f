"""Signals tell subscribers when checks fail and recover."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.signals import (
    check_failed,
    check_recovered,
    health_changed,
    health_checked,
)

from .helpers import wait_for


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append((sender, kwargs))


@pytest.fixture
def state(health: HealthCheck) -> dict[str, bool]:
    flags = {"db": True}
    health.add_check(lambda: flags["db"], name="db")
    health.add_check(lambda: True, name="always")
    return flags


def test_check_failed_fires_on_every_failing_run(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    failed = Recorder()
    state["db"] = False
    with check_failed.connected_to(failed, app):
        client.get("/health")
        client.get("/health")
    assert len(failed.calls) == 2
    sender, kwargs = failed.calls[0]
    assert sender is app  # the real app, not the proxy
    result = kwargs["result"]
    assert isinstance(result, CheckResult)
    assert (result.name, result.status) == ("db", "fail")


def test_check_recovered_fires_once_after_a_failure(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    recovered = Recorder()
    with check_recovered.connected_to(recovered, app):
        client.get("/health")
        state["db"] = False
        client.get("/health")
        state["db"] = True
        client.get("/health")
        client.get("/health")
    assert [kw["result"].name for _, kw in recovered.calls] == ["db"]


def test_health_changed_fires_when_the_overall_status_changes(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    changed = Recorder()
    with health_changed.connected_to(changed, app):
        client.get("/health")  # first run passes: not a change
        state["db"] = False
        client.get("/health")
        client.get("/health")
        state["db"] = True
        client.get("/health")
    assert [(kw["previous"], kw["report"].status) for _, kw in changed.calls] == [
        ("pass", "fail"),
        ("fail", "pass"),
    ]


def test_a_first_run_that_fails_is_a_change(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    changed = Recorder()
    state["db"] = False
    with health_changed.connected_to(changed, app):
        client.get("/health")
    assert [(kw["previous"], kw["report"].status) for _, kw in changed.calls] == [
        (None, "fail")
    ]


def test_health_checked_fires_after_every_run(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    checked = Recorder()
    with health_checked.connected_to(checked, app):
        client.get("/health")
        client.get("/health")
    assert len(checked.calls) == 2
    report = checked.calls[0][1]["report"]
    assert isinstance(report, HealthReport)
    assert [r.name for r in report.checks] == ["db", "always"]


def test_subscribers_of_another_app_hear_nothing(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    other = Flask("other")
    failed = Recorder()
    state["db"] = False
    with check_failed.connected_to(failed, other):
        client.get("/health")
    assert failed.calls == []


def test_a_broken_subscriber_changes_nothing(
    app: Flask, client: Any, state: dict[str, bool], caplog: Any
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("subscriber bug")

    after = Recorder()
    state["db"] = False
    with check_failed.connected_to(broken, app), check_failed.connected_to(after, app):
        response = client.get("/health")
    assert response.status_code == 500
    assert b"subscriber bug" not in response.data
    assert len(after.calls) == 1
    assert "A subscriber of the 'check-failed' signal raised" in caplog.text
    state["db"] = True
    with health_checked.connected_to(broken, app):
        assert client.get("/health").status_code == 200


def test_non_critical_failures_still_fire_check_failed(
    app: Flask, health: HealthCheck, client: Any
) -> None:
    health.add_check(lambda: True, name="database")
    health.add_check(lambda: False, name="search", critical=False)
    failed = Recorder()
    changed = Recorder()
    with (
        check_failed.connected_to(failed, app),
        health_changed.connected_to(changed, app),
    ):
        assert client.get("/health").status_code == 200
        assert client.get("/health").status_code == 200
        wait_for(lambda: len(failed.calls) == 2)
        wait_for(lambda: len(changed.calls) == 1)
    assert [(kw["result"].name, kw["result"].critical) for _, kw in failed.calls] == [
        ("search", False),
        ("search", False),
    ]
    # A first run that warns is a change, as one that fails is.
    assert [(kw["previous"], kw["report"].status) for _, kw in changed.calls] == [
        (None, "warn")
    ]


def test_signal_names_follow_the_flask_convention() -> None:
    assert check_failed.name == "check-failed"
    assert check_recovered.name == "check-recovered"
    assert health_changed.name == "health-changed"
    assert health_checked.name == "health-checked"


def test_the_signals_module_holds_the_signals_alone() -> None:
    """``flask_healthcheck.signals`` is declarations only: importing it
    loads neither Flask nor the delivery machinery."""
    import flask_healthcheck.signals as signals

    assert signals.__all__ == [
        "check_failed",
        "check_recovered",
        "health_changed",
        "health_checked",
    ]
    code = (
        "import sys\n"
        "from flask_healthcheck.signals import *\n"
        "print(check_failed.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('flask')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "check-failed",
        "['flask_healthcheck', 'flask_healthcheck.signals']",
    ]
