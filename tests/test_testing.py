"""The helper for users' own tests: ``record_signals``."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import HealthCheck
from flask_healthcheck.signals import health_checked
from flask_healthcheck.testing import record_signals


def test_records_what_probes_send_once_delivered(app: Flask) -> None:
    health = HealthCheck(app)
    ok = {"database": False}
    health.add_check(lambda: ok["database"], name="database")
    client = FlaskClient(app)  # a plain client: it doesn't wait for signals
    with record_signals(app) as recorded:
        client.get("/health")
        assert health.wait_for_signals(app)
        assert [r.name for r in recorded.failed] == ["database"]
        ok["database"] = True
        client.get("/health")
    assert [r.name for r in recorded.recovered] == ["database"]
    assert [(report.status, previous) for report, previous in recorded.changed] == [
        ("fail", None),
        ("pass", "fail"),
    ]
    assert [report.status for report in recorded.checked] == ["fail", "pass"]


def test_records_nothing_of_another_app(app: Flask) -> None:
    HealthCheck(app).add_check(lambda: False, name="database")
    other = Flask("other")
    HealthCheck(other)
    with record_signals(other) as recorded:
        FlaskClient(app).get("/health")
    assert recorded.failed == []
    assert recorded.checked == []


def test_a_hanging_subscriber_fails_the_wait(app: Flask) -> None:
    HealthCheck(app).add_check(lambda: True, name="database")
    release = threading.Event()
    with health_checked.connected_to(lambda app, report: release.wait(), app):
        with pytest.raises(AssertionError, match="does a subscriber hang"):
            with record_signals(app, timeout=0.2):
                FlaskClient(app).get("/health")
        release.set()


def test_wait_for_signals_is_the_one_wait(app: Flask) -> None:
    """The public wait returns False on a hang instead of raising, for the
    current app too, and True once the subscriber returns."""
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    release = threading.Event()
    with health_checked.connected_to(lambda app, report: release.wait(), app):
        FlaskClient(app).get("/health")
        with app.app_context():
            assert not health.wait_for_signals(timeout=0.2)
        release.set()
        assert health.wait_for_signals(app)
