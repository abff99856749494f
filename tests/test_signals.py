"""Signals tell subscribers when checks fail and recover."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from blinker import NamedSignal
from flask import Flask
from flask.testing import FlaskClient

import flask_healthcheck.delivery
import flask_healthcheck.pool
from flask_healthcheck import (
    CheckResult,
    HealthCheck,
    HealthReport,
    signals,
)
from flask_healthcheck.delivery import SignalDispatcher
from flask_healthcheck.signals import (
    check_failed,
    check_recovered,
    health_changed,
    health_checked,
)
from flask_healthcheck.state import get_state

from .helpers import (
    Bounded,
    Switch,
    bounded,
    configured_health,
    run_in,
    wait_for,
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append((sender, kwargs))


@contextlib.contextmanager
def recording(signal: NamedSignal, app: Flask) -> Iterator[Recorder]:
    """A :class:`Recorder` of ``signal`` sent by ``app`` within the block."""
    recorder = Recorder()
    with signal.connected_to(recorder, app):
        yield recorder


@pytest.fixture
def state(health: HealthCheck) -> dict[str, bool]:
    flags = {"db": True}
    health.add_check(lambda: flags["db"], name="db")
    health.add_check(lambda: True, name="always")
    return flags


def probe_in_turn(client: Any, state: dict[str, bool], db: list[bool]) -> None:
    """One probe of ``/health`` for each item of ``db``: whether the ``db``
    check passes in that run."""
    for ok in db:
        state["db"] = ok
        client.get("/health")


def test_check_failed_fires_on_every_failing_run(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    state["db"] = False
    with recording(check_failed, app) as failed:
        for _ in range(2):
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
    with recording(check_recovered, app) as recovered:
        probe_in_turn(client, state, [True, False, True, True])
    assert [kw["result"].name for _, kw in recovered.calls] == ["db"]


def test_health_changed_fires_when_the_overall_status_changes(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    with recording(health_changed, app) as changed:
        # The first run passes: not a change.
        probe_in_turn(client, state, [True, False, False, True])
    assert [(kw["previous"], kw["report"].status) for _, kw in changed.calls] == [
        ("pass", "fail"),
        ("fail", "pass"),
    ]


def test_a_first_run_that_fails_is_a_change(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    state["db"] = False
    with recording(health_changed, app) as changed:
        client.get("/health")
    assert [(kw["previous"], kw["report"].status) for _, kw in changed.calls] == [
        (None, "fail")
    ]


def test_health_checked_fires_after_every_run(
    app: Flask, client: Any, state: dict[str, bool]
) -> None:
    with recording(health_checked, app) as checked:
        probe_in_turn(client, state, [True, True])
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


# -- under a storm of probes ---------------------------------------------------


def test_health_changed_is_sent_once_per_transition_under_a_storm(
    app: Flask,
) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/readyz": ["ready"]}
    health = HealthCheck(app)
    rng = random.Random(8)

    def database() -> bool:
        time.sleep(rng.uniform(0, 0.002))
        return rng.random() < 0.5

    health.add_check(database, tags=["ready"])
    health.add_check(lambda: rng.random() < 0.7, name="cache", critical=False)
    changes: list[tuple[str | None, str]] = []

    def on_changed(sender: Flask, report: HealthReport, previous: str | None) -> None:
        changes.append((previous, report.status))

    urls = ["/health", "/readyz", "/health/database", "/health?exclude=cache"]

    def prober(offset: int) -> None:
        client = app.test_client()
        for number in range(60):
            client.get(urls[(number + offset) % len(urls)])

    with health_changed.connected_to(on_changed, app):
        probers = [Bounded(functools.partial(prober, k)) for k in range(8)]
        for p in probers:
            p.result(10, "a prober")
        assert health.wait_for_signals(app, 5)
    assert changes, "no health_changed at all"
    for before, after in zip(changes, changes[1:], strict=False):
        assert before[1] == after[0], f"{before} then {after}"
    assert all(previous != status for previous, status in changes)
    assert changes[-1][1] == get_state(app).runner.recorder.status


# -- slow, hung and stuck subscribers ------------------------------------------


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
    health = configured_health(app, HEALTHCHECK_TIMEOUT=0.2)
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
    health = configured_health(app, HEALTHCHECK_TIMEOUT=0.2)
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
        assert get_state(app).wait_for_signals(2)
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
