"""Hostile tests: config values from the environment
(``app.config.from_prefixed_env()``), and signal delivery under abuse."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import flask_healthcheck.delivery
from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck, signals
from flask_healthcheck.delivery import SignalDispatcher
from flask_healthcheck.state import get_state

from .helpers import SUCCESS, Bounded, bounded, wait_for


@pytest.fixture
def env_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make(key, text)``: an app whose ``HEALTHCHECK_<key>`` comes from the
    environment variable ``FLASK_HEALTHCHECK_<key>=text``."""
    made: list[Flask] = []

    def make(key: str, text: str) -> Flask:
        monkeypatch.setenv(f"FLASK_HEALTHCHECK_{key}", text)
        app = Flask(f"env-{key.lower()}-{len(made)}")
        app.config.update(TESTING=True)
        app.config.from_prefixed_env()
        monkeypatch.delenv(f"FLASK_HEALTHCHECK_{key}")
        made.append(app)
        return app

    yield make
    for app in made:
        state = app.extensions.get("healthcheck")
        if state is not None:
            state.refresher.stop(timeout=2)


def run_in(app: Flask, health: HealthCheck) -> str:
    with app.app_context():
        return health.run().status


def slow_ok() -> bool:
    time.sleep(0.05)
    return True


class Counted:
    """A check returning ``value``, noting each run in ``runs``."""

    def __init__(self, runs: list[int], value: bool) -> None:
        self.runs = runs
        self.value = value

    def __call__(self) -> bool:
        self.runs.append(1)
        return self.value


# -- what held -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("TIMEOUT", "NaN"),
        ("TIMEOUT", "nan"),  # not JSON: stays text
        ("TIMEOUT", "-1"),
        ("TIMEOUT", "0"),
        ("TIMEOUT", "true"),
        ("CACHE_TTL", "-Infinity"),
        ("INTERVAL", "NaN"),
        ("SHOW_DETAILS", '"true"'),  # the text "true", not the bool
        ("FAILURE_STATUS", "200"),
        ("FAILURE_STATUS", "5e2"),
        ("HTML_REFRESH", "1.5"),
        ("URL", '"health"'),
    ],
)
def test_bad_values_from_the_environment_fail_at_init_app_naming_the_key(
    env_app: Any, key: str, text: str
) -> None:
    app = env_app(key, text)
    with pytest.raises(ConfigurationError, match=f"HEALTHCHECK_{key}"):
        HealthCheck(app)


def test_true_from_the_environment_shows_details(env_app: Any) -> None:
    app = env_app("SHOW_DETAILS", "true")
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    body = FlaskClient(app).get("/health").get_json()
    assert body["data"]["checks"]["database"]["status"] == "pass"


# -- defects -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Infinity", "1e309", "1e10"])
def test_a_huge_timeout_from_the_environment_is_refused_or_works(
    env_app: Any, text: str
) -> None:
    app = env_app("TIMEOUT", text)
    try:
        health = HealthCheck(app)
    except ConfigurationError as e:
        assert "HEALTHCHECK_TIMEOUT" in str(e)
        return
    health.add_check(slow_ok, name="database")
    response = bounded(lambda: FlaskClient(app).get("/health"), 2, "the probe")
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert bounded(lambda: run_in(app, health), 2, "health.run()") == "pass"


def test_an_infinite_check_timeout_is_refused_at_registration(app: Flask) -> None:
    health = HealthCheck(app)
    try:
        health.add_check(slow_ok, name="database", timeout=float("inf"))
    except ConfigurationError:
        return
    response = bounded(lambda: FlaskClient(app).get("/health"), 2, "the probe")
    assert (response.status_code, response.data) == (200, SUCCESS)


@pytest.mark.parametrize("text", ["Infinity", "1e10"])
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_huge_interval_is_refused_or_keeps_the_refresher_alive(
    env_app: Any, text: str
) -> None:
    app = env_app("INTERVAL", text)
    try:
        health = HealthCheck(app)
    except ConfigurationError as e:
        assert "HEALTHCHECK_INTERVAL" in str(e)
        return
    runs: list[int] = []
    health.add_check(Counted(runs, True), name="database")
    health.start(app)
    wait_for(lambda: bool(runs), 2)
    time.sleep(0.2)
    assert get_state(app).refresher.running, "the refresh thread died"


# -- signals -------------------------------------------------------------------


class Switch:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


def probe(app: Flask) -> int:
    return bounded(lambda: FlaskClient(app).get("/health").status_code, 2, "probe")


def test_a_subscriber_stuck_on_the_failure_hears_the_recovery_when_it_returns(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flask_healthcheck.delivery, "STUCK_SECONDS", 0.05)
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    said: list[str] = []
    entered = threading.Event()

    def pager(sender: Flask, result: CheckResult) -> None:
        said.append(result.status)
        if not entered.is_set():
            entered.set()
            time.sleep(0.4)  # the webhook's HTTP call, slow this once

    with (
        signals.check_failed.connected_to(pager, app),
        signals.check_recovered.connected_to(pager, app),
    ):
        database.ok = False
        assert probe(app) == 500
        assert entered.wait(2)
        time.sleep(0.15)  # left behind by now
        database.ok = True
        assert probe(app) == 200
        time.sleep(0.5)  # the pager has returned
        assert get_state(app).signals.flush(2)
        wait_for(lambda: said[-1] == "pass", 1, f"the pager's last word: {said}")


def test_a_subscriber_may_disconnect_itself_and_connect_others_meanwhile(
    app: Flask, health: HealthCheck
) -> None:
    flips = Switch()
    health.add_check(lambda: flips(), name="database")
    once: list[str] = []
    late: list[int] = []

    def only_once(sender: Flask, result: CheckResult) -> None:
        once.append(result.name)
        signals.check_failed.disconnect(only_once, sender=app)

    def joiner(sender: Flask, **kwargs: Any) -> None:
        signals.health_checked.connect(lambda sender, **kw: late.append(1), app)

    signals.check_failed.connect(only_once, app, weak=False)
    signals.health_checked.connect(joiner, app, weak=False)
    try:
        flips.ok = False
        for _ in range(4):
            bounded(lambda: run_in(app, health), 2, "health.run()")
        assert once == ["database"]
    finally:
        signals.health_checked.disconnect(joiner, sender=app)


def test_ten_thousand_deliveries_behind_a_hung_one_stay_bounded_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flask_healthcheck.delivery, "STUCK_SECONDS", 60.0)
    dispatcher = SignalDispatcher("storm")
    release = threading.Event()
    delivered: list[int] = []
    try:
        dispatcher.put([lambda: None if release.wait(5) else None])
        started = time.monotonic()
        for i in range(12_000):
            dispatcher.put([partial(delivered.append, i)])
        assert time.monotonic() - started < 1.5
        assert len(dispatcher._pending) <= flask_healthcheck.delivery.MAX_PENDING
    finally:
        release.set()
    assert bounded(lambda: dispatcher.flush(2), 2.5, "flush")
    assert delivered == sorted(delivered)
    assert delivered[-1] == 11_999


def test_health_run_inside_a_check_never_wedges_the_app(app: Flask) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=0.3)
    health = HealthCheck(app)

    @health.check
    def recursive() -> bool:
        return health.run().healthy

    @health.check
    def database() -> bool:
        return True

    started = time.monotonic()
    first = Bounded(lambda: FlaskClient(app).get("/health").status_code, "probe")
    # health.run() in a check answers from the other checks, without a run
    # of its own (issue 17): it neither waits for itself nor starts a storm.
    assert first.result(2, "the probe") == 200
    assert time.monotonic() - started < 1.0
    # The check left running is reported, not started again; its siblings go on.
    body = bounded(
        lambda: FlaskClient(app).get("/health/database").status_code, 1, "probe"
    )
    assert body == 200
