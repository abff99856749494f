"""``health.run()`` from a check or a signal subscriber never starts a run:
a run there would cause another, without end (issue 17: one probe set off
1,032 check runs per second)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.signals import check_failed, health_checked

#: Seconds to watch for runs that nobody asked for (a storm makes hundreds).
WATCH = 0.5


class Runs:
    """A check that counts its runs and passes or fails as told."""

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            self.count += 1
        return self.ok


def _storm_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "without end" in r.getMessage()]


def the_storm_warning(caplog: pytest.LogCaptureFixture) -> str:
    """The one warning of a run storm logged."""
    (warning,) = _storm_warnings(caplog)
    return warning


def add_database(health: HealthCheck, ok: bool) -> Runs:
    """A ``database`` check counting its runs, passing if ``ok``."""
    database = Runs(ok=ok)
    health.add_check(database, name="database")
    return database


def test_health_run_in_a_subscriber_answers_from_the_latest_results(
    app: Flask, health: HealthCheck, caplog: pytest.LogCaptureFixture
) -> None:
    database = add_database(health, ok=False)
    reports: list[HealthReport] = []

    def page_with_the_full_report(sender: Flask, result: CheckResult) -> None:
        with sender.app_context():
            reports.append(health.run())

    client = app.test_client()
    with (
        caplog.at_level(logging.WARNING, logger="flask_healthcheck"),
        check_failed.connected_to(page_with_the_full_report, app),
    ):
        assert client.get("/health").status_code == 500
        time.sleep(WATCH)
        assert client.get("/health").status_code == 500
        time.sleep(WATCH)
        assert health.wait_for_signals(app)
    assert database.count == 2  # the probes' runs, no more
    assert [r.status for r in reports] == ["fail", "fail"]
    assert [c.name for c in reports[0].checks] == ["database"]
    assert "from a subscriber of a health signal" in the_storm_warning(caplog)


def test_a_probe_from_a_subscriber_starts_no_run(
    app: Flask, health: HealthCheck
) -> None:
    database = add_database(health, ok=True)
    statuses: list[int] = []

    def probe_again(sender: Flask, report: HealthReport) -> None:
        # A plain client: the fixture's waits for delivery, which a
        # subscriber can't (it is the delivery).
        statuses.append(FlaskClient(sender).get("/health").status_code)

    with health_checked.connected_to(probe_again, app):
        assert app.test_client().get("/health").status_code == 200
        time.sleep(WATCH)
        assert health.wait_for_signals(app)
    assert database.count == 1
    assert statuses == [200]


def test_health_run_in_a_check_answers_from_the_other_checks(
    app: Flask, health: HealthCheck, caplog: pytest.LogCaptureFixture
) -> None:
    database = add_database(health, ok=True)
    seen: list[HealthReport] = []

    @health.check(timeout=2)
    def everything_else() -> bool:
        report = health.run()
        seen.append(report)
        return report.healthy

    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        started = time.monotonic()
        for _ in range(3):
            assert client.get("/health").status_code == 200
        # It never waited for itself until its timeout.
        assert time.monotonic() - started < 2
        time.sleep(WATCH)
    assert database.count == 3  # one run per probe
    assert [[c.name for c in r.checks] for r in seen] == [["database"]] * 3
    assert "from the health check 'everything_else'" in the_storm_warning(caplog)


def test_health_run_outside_checks_and_subscribers_still_runs(
    app: Flask, health: HealthCheck
) -> None:
    """The guard is for code inside a run only."""
    database = add_database(health, ok=True)
    with app.app_context():
        health.run()
        health.run()
    assert database.count == 2
