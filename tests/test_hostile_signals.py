"""Hostile tests of signal delivery: hung, slow and resuming subscribers.

``flask_healthcheck.delivery.STUCK_SECONDS`` (10 s) is made small here, so
the dispatcher gives up on a stuck subscriber call within the test's time.
Hung subscribers are released at teardown.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import flask_healthcheck.delivery
from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.signals import check_failed, check_recovered, health_checked

from .helpers import Switch, bounded, wait_for

#: What ``STUCK_SECONDS`` is in these tests.
STUCK = 0.05


@pytest.fixture
def stuck_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flask_healthcheck.delivery, "STUCK_SECONDS", STUCK)


class Alerts:
    """What an alerting subscriber last said about each check."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self._lock = threading.Lock()

    def on_failed(self, sender: Flask, result: CheckResult) -> None:
        with self._lock:
            self.said.append("failing")

    def on_recovered(self, sender: Flask, result: CheckResult) -> None:
        with self._lock:
            self.said.append("recovered")

    def last(self) -> str | None:
        with self._lock:
            return self.said[-1] if self.said else None


def probe(app: Flask, path: str = "/health") -> int:
    """A probe as a server sends it: it doesn't wait for the signals it causes
    (the fixture's test client does)."""
    return bounded(lambda: FlaskClient(app).get(path).status_code, 2, "the probe")


def test_a_forever_hanging_exporter_never_silences_alerts(
    app: Flask, release: threading.Event, stuck_soon: None
) -> None:
    """The brief's scenario: an exporter hangs forever on ``health_checked``
    (every call) while the background refresh runs every 0.05 s. Alerts
    of another subscriber must keep arriving, flip after flip."""
    app.config.update(HEALTHCHECK_INTERVAL=0.05, HEALTHCHECK_TIMEOUT=0.5)
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    health.start(app)  # a TESTING app's requests don't start it
    alerts = Alerts()

    def exporter(sender: Flask, report: HealthReport) -> None:
        release.wait()  # a push gateway that never answers

    # Idle delivery threads of other tests' apps (of the same name) wait a
    # while before they exit: count this app's from here.
    before = _signal_threads(app)
    with (
        health_checked.connected_to(exporter, app),
        check_failed.connected_to(alerts.on_failed, app),
        check_recovered.connected_to(alerts.on_recovered, app),
    ):
        health.start(app)
        for flip in range(6):  # more flips than MAX_STUCK_THREADS
            database.ok = not database.ok
            expected = "recovered" if database.ok else "failing"
            wait_for(
                lambda: alerts.last() == expected,  # noqa: B023
                0.6,
                f"flip {flip + 1}: the alert {expected!r} never arrived"
                f" (said so far: {alerts.said})",
            )
        # One thread per hung subscriber would do; not one per stuck call.
        assert _signal_threads(app) - before <= 3


def _signal_threads(app: Flask) -> int:
    name = f"healthcheck-signals-{app.name}"
    return sum(t.name == name for t in threading.enumerate())


def test_a_slow_subscriber_that_resumes_never_leaves_a_stale_failure(
    app: Flask, stuck_soon: None
) -> None:
    """A webhook stuck for longer than ``STUCK_SECONDS`` on a host that
    doesn't answer (a 30 s client timeout against the 10 s default), then
    returning: the pager connected after it must end on "recovered"."""
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    alerts = Alerts()
    in_webhook = threading.Event()

    def webhook(sender: Flask, result: CheckResult) -> None:
        if not in_webhook.is_set():
            in_webhook.set()
            time.sleep(8 * STUCK)  # the client's own timeout, then it gives up

    with (
        check_failed.connected_to(webhook, app),
        check_failed.connected_to(alerts.on_failed, app),
        check_recovered.connected_to(alerts.on_recovered, app),
    ):
        database.ok = False
        assert probe(app) == 500
        assert in_webhook.wait(2)
        time.sleep(2 * STUCK)  # the webhook is stuck now
        database.ok = True
        assert probe(app) == 200  # its signals go on a new thread
        wait_for(lambda: alerts.last() == "recovered", 2)
        time.sleep(8 * STUCK + 0.2)  # the webhook has returned by now
        assert alerts.said[-1] == "recovered", f"the last word: {alerts.said}"


def test_health_run_delivers_its_signals_to_a_slow_subscriber_before_returning(
    app: Flask,
) -> None:
    app.config["HEALTHCHECK_TIMEOUT"] = 0.2
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    delivered: list[str] = []

    def webhook(sender: Flask, result: CheckResult) -> None:
        time.sleep(0.5)  # a webhook: slower than the check, far from stuck
        delivered.append(result.name)

    def run() -> list[str]:
        with app.app_context():
            health.run()
        return list(delivered)

    with check_failed.connected_to(webhook, app):
        assert bounded(run, 3, "health.run()") == ["database"]


def test_flask_health_delivers_its_alert_before_it_exits(app: Flask) -> None:
    app.config["HEALTHCHECK_TIMEOUT"] = 0.2
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    delivered: list[str] = []

    def webhook(sender: Flask, result: CheckResult) -> None:
        time.sleep(0.5)
        delivered.append(result.name)

    def invoke() -> tuple[int, list[str]]:
        result = app.test_cli_runner().invoke(args=["health"])
        return result.exit_code, list(delivered)

    with check_failed.connected_to(webhook, app):
        assert bounded(invoke, 3, "flask health") == (1, ["database"])


def test_a_subscriber_that_hangs_once_delays_alerts_by_stuck_seconds_only(
    app: Flask, release: threading.Event, stuck_soon: None
) -> None:
    """The single hung call the dispatcher is built for: later alerts go on
    on a new thread, in order."""
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    alerts = Alerts()
    hung = threading.Event()

    def exporter(sender: Flask, **kwargs: Any) -> None:
        if not hung.is_set():
            hung.set()
            release.wait()

    with (
        health_checked.connected_to(exporter, app),
        check_failed.connected_to(alerts.on_failed, app),
        check_recovered.connected_to(alerts.on_recovered, app),
    ):
        assert probe(app) == 200
        assert hung.wait(2)
        time.sleep(2 * STUCK)
        for flip in range(4):
            database.ok = not database.ok
            expected = "recovered" if database.ok else "failing"
            probe(app)
            wait_for(lambda: alerts.last() == expected, 2, f"flip {flip}")  # noqa: B023
        assert alerts.said == ["failing", "recovered"] * 2
