"""The alerting recipes of ``docs/alerting.md``, run as they are written there."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from flask_healthcheck import CheckResult, HealthCheck, signals
from flask_healthcheck.contrib.alerts import Alert, WebhookAlerts
from flask_healthcheck.contrib.prometheus import init_prometheus, metrics_for

from .helpers import LocalHTTPServer, Request, SignalFlushingClient, wait_for
from .servers import closed_port

DOCS = Path(__file__).parent.parent / "docs" / "alerting.md"


def load_recipe(name: str) -> dict[str, Any]:
    """Run the Python block after ``<!-- recipe: name -->`` in the docs."""
    match = re.search(
        rf"<!-- recipe: {name} -->\n```python\n(.*?)\n```", DOCS.read_text(), re.S
    )
    assert match, f"no recipe {name!r} in {DOCS}"
    namespace: dict[str, Any] = {"__name__": f"recipe_{name.replace('-', '_')}"}
    exec(compile(match.group(1), f"{DOCS}:{name}", "exec"), namespace)
    return namespace


class Switch:
    """A check whose outcome the test sets: ``switch.ok = False``."""

    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> None:
        if not self.ok:
            raise ConnectionError(
                "could not connect to postgresql://app:hunter22@db.internal/app"
            )


@pytest.fixture
def switch(app: Flask, health: HealthCheck) -> Switch:
    switch = Switch()
    health.add_check(switch, name="database")
    return switch


def probe(app: Flask) -> int:
    app.test_client_class = SignalFlushingClient
    return app.test_client().get("/health").status_code


# -- structured logging ---------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[tuple[dict[str, Any], io.StringIO]]:
    recipe = load_recipe("structured-logging")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(recipe["JSONFormatter"]())
    logger = recipe["health_log"]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield recipe, stream
    logger.removeHandler(handler)


def test_structured_logging_writes_json_lines(
    app: Flask,
    switch: Switch,
    json_log: tuple[dict[str, Any], io.StringIO],
) -> None:
    recipe, stream = json_log
    recipe["init_health_logging"](app)
    switch.ok = False
    assert probe(app) == 500
    assert probe(app) == 500
    switch.ok = True
    assert probe(app) == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["level"], line["event"]) for line in lines] == [
        ("ERROR", "check_failed"),
        ("WARNING", "health_changed"),
        ("ERROR", "check_failed"),
        ("INFO", "check_recovered"),
        ("WARNING", "health_changed"),
    ]
    failed = lines[0]
    assert failed["logger"] == "myapp.health"
    assert failed["check"] == "database"
    assert failed["app"] == app.name
    assert failed["error"].startswith("ConnectionError: could not connect to")
    assert failed["duration_ms"] >= 0
    assert lines[1]["failing"] == ["database"]
    assert (lines[4]["previous"], lines[4]["status"]) == ("fail", "pass")
    assert "hunter22" not in stream.getvalue()


# -- webhook ------------------------------------------------------------------------


def posts(server: LocalHTTPServer) -> list[Request]:
    return [r for r in server.requests if r.method == "POST"]


def texts(server: LocalHTTPServer) -> list[str]:
    return [json.loads(r.body)["text"] for r in posts(server)]


@pytest.fixture
def webhook(
    app: Flask, http_server: LocalHTTPServer
) -> Iterator[Callable[..., WebhookAlerts]]:
    made: list[WebhookAlerts] = []

    def make(**options: Any) -> WebhookAlerts:
        alerts = WebhookAlerts(http_server.url("/hooks/T0/B0/x"), app=app, **options)
        made.append(alerts)
        return alerts

    yield make
    for alerts in made:
        alerts.close()


def test_webhook_posts_failure_and_recovery_as_slack_json(
    app: Flask,
    switch: Switch,
    http_server: LocalHTTPServer,
    webhook: Callable[..., WebhookAlerts],
) -> None:
    webhook(interval=0)
    switch.ok = False
    assert probe(app) == 500
    assert probe(app) == 500  # Still failing: no second message.
    wait_for(lambda: len(posts(http_server)) == 1)
    switch.ok = True
    assert probe(app) == 200
    wait_for(lambda: len(posts(http_server)) == 2)
    time.sleep(0.1)
    first, second = posts(http_server)
    assert first.path == "/hooks/T0/B0/x"
    assert first.headers["Content-Type"] == "application/json"
    assert json.loads(first.body) == {
        "text": f":red_circle: {app.name}: health check 'database' is failing:"
        " ConnectionError: could not connect to postgresql://app:***@db.internal/app"
    }
    assert texts(http_server)[1] == (
        f":large_green_circle: {app.name}: health check 'database' recovered"
    )


def test_webhook_posts_off_the_request_thread(
    app: Flask,
    switch: Switch,
    http_server: LocalHTTPServer,
    webhook: Callable[..., WebhookAlerts],
) -> None:
    http_server.post_delay = 0.6
    webhook()
    switch.ok = False
    start = time.perf_counter()
    assert probe(app) == 500
    assert time.perf_counter() - start < 0.5
    wait_for(lambda: len(posts(http_server)) == 1)


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_flapping_check_cant_flood_the_channel(
    app: Flask,
    health: HealthCheck,
    switch: Switch,
    http_server: LocalHTTPServer,
    webhook: Callable[..., WebhookAlerts],
) -> None:
    # ``WebhookAlerts(clock=...)``: with the clock frozen
    # the interval can't run out halfway, however slow the machine, and
    # ``health.run()`` delivers its signals before it returns.
    clock = FakeClock()
    webhook(interval=0.5, clock=clock)

    def run(ok: bool) -> None:
        switch.ok = ok
        with app.app_context():
            health.run()

    run(ok=False)
    wait_for(lambda: len(posts(http_server)) == 1)
    for _ in range(5):
        run(ok=True)
        run(ok=False)
    # The rest is folded into one message about the latest state, sent when
    # the interval is over; then nothing more.
    time.sleep(0.1)
    assert len(posts(http_server)) == 1
    clock.advance(0.5)
    wait_for(lambda: len(posts(http_server)) == 2)
    clock.advance(60)
    time.sleep(0.1)
    first, second = texts(http_server)
    assert first.endswith(
        "is failing: ConnectionError: could not connect to"
        " postgresql://app:***@db.internal/app"
    )
    assert "is failing" in second
    assert second.endswith("(9 more changes since the last message)")


def test_the_rate_limit_is_per_check(
    app: Flask,
    health: HealthCheck,
    http_server: LocalHTTPServer,
    webhook: Callable[..., WebhookAlerts],
) -> None:
    webhook(interval=60)
    health.add_check(lambda: False, name="one")
    health.add_check(lambda: False, name="two")
    probe(app)
    wait_for(lambda: len(posts(http_server)) == 2)
    assert sorted(t.split("'")[1] for t in texts(http_server)) == ["one", "two"]


def test_a_failed_post_is_logged_without_the_url(
    app: Flask, switch: Switch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/services/T0/B0/s3cr3t-hook-token"
    alerts = WebhookAlerts(url, app=app)
    try:
        switch.ok = False
        probe(app)
        wait_for(lambda: "Posting the health alert" in caplog.text)
    finally:
        alerts.close()
    assert "about check 'database' failed: URLError" in caplog.text
    assert "s3cr3t-hook-token" not in caplog.text


def test_a_custom_payload(
    app: Flask,
    switch: Switch,
    http_server: LocalHTTPServer,
    webhook: Callable[..., WebhookAlerts],
) -> None:
    def payload(alert: Alert) -> dict[str, Any]:
        return {"content": alert.text, "check": alert.check, "status": alert.status}

    webhook(payload=payload)
    switch.ok = False
    probe(app)
    wait_for(lambda: len(posts(http_server)) == 1)
    body = json.loads(posts(http_server)[0].body)
    assert (body["check"], body["status"]) == ("database", "fail")


def test_webhook_recipe(
    app: Flask, health: HealthCheck, http_server: LocalHTTPServer
) -> None:
    init_webhook_alerts = load_recipe("webhook")["init_webhook_alerts"]
    assert init_webhook_alerts(app) is None
    app.config["HEALTH_WEBHOOK_URL"] = http_server.url("/hook")
    alerts = init_webhook_alerts(app)
    try:
        assert isinstance(alerts, WebhookAlerts)
        assert alerts.interval == 300
        health.add_check(lambda: False, name="x")
        probe(app)
        wait_for(lambda: len(posts(http_server)) == 1)
    finally:
        alerts.close()


# -- Sentry ----------------------------------------------------------------------------


def test_sentry_captures_once_per_outage(app: Flask, switch: Switch) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from sentry_sdk.transport import Transport

    class RecordingTransport(Transport):
        def __init__(self) -> None:
            super().__init__()
            self.events: list[dict[str, Any]] = []

        def capture_envelope(self, envelope: Any) -> None:
            event = envelope.get_event()
            if event is not None:
                self.events.append(event)

    transport = RecordingTransport()
    client = sentry_sdk.Client(
        dsn="https://key@sentry.invalid/1",
        transport=transport,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    load_recipe("sentry")["init_sentry_alerts"](app)
    # Subscribers run on the app's delivery thread: the client must be the
    # process's own, as sentry_sdk.init() makes it, not a scope's of this thread.
    scope = sentry_sdk.get_global_scope()
    previous = scope.client
    scope.set_client(client)
    try:
        switch.ok = False
        probe(app)
        probe(app)
        switch.ok = True
        probe(app)
        switch.ok = False
        probe(app)
    finally:
        scope.set_client(previous)
    client.close()
    assert len(transport.events) == 2
    event = transport.events[0]
    assert event["level"] == "error"
    assert event["message"].startswith(
        f"Health check 'database' of {app.name} is failing: ConnectionError:"
    )
    assert "hunter22" not in event["message"]
    assert event["tags"] == {"health_check": "database"}
    assert event["fingerprint"] == ["health-check", app.name, "database"]


def test_sentry_recipe_without_sentry_does_nothing(
    app: Flask, switch: Switch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    load_recipe("sentry")["init_sentry_alerts"](app)
    assert not list(signals.check_failed.receivers_for(app))
    switch.ok = False
    assert probe(app) == 500


# -- Prometheus ---------------------------------------------------------------------


def test_prometheus_gauges_are_served_where_mounted(
    app: Flask, health: HealthCheck
) -> None:
    registry = CollectorRegistry()
    load_recipe("prometheus")["init_metrics"](app, registry)
    health.add_check(lambda: True, name="up")
    health.add_check(lambda: CheckResult(status="warn"), name="degraded")
    health.add_check(lambda: False, name="down", critical=False)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'health_check_status{check="up"} 1.0' in metrics
    assert 'health_check_status{check="degraded"} 0.5' in metrics
    assert 'health_check_status{check="down"} 0.0' in metrics
    assert 'health_check_duration_seconds{check="up"}' in metrics
    # A scrape reads the gauges; it does not run the checks.
    calls = []
    health.add_check(lambda: calls.append(1), name="counted")
    client.get("/metrics")
    assert calls == []


def test_prometheus_gauges_follow_each_run(app: Flask, switch: Switch) -> None:
    registry = CollectorRegistry()
    metrics = init_prometheus(app, registry)
    assert init_prometheus(app, registry) is metrics  # Connecting twice is fine.

    def status() -> float | None:
        return registry.get_sample_value("health_check_status", {"check": "database"})

    probe(app)
    assert status() == 1.0
    switch.ok = False
    probe(app)
    assert status() == 0.0
    duration = registry.get_sample_value(
        "health_check_duration_seconds", {"check": "database"}
    )
    assert duration is not None and duration >= 0


def test_prometheus_keeps_apps_apart_by_registry() -> None:
    first, second = Flask("first"), Flask("second")
    health = HealthCheck()
    health.init_app(first)
    health.init_app(second)
    health.add_check(lambda: True, name="c", app=first)
    health.add_check(lambda: False, name="c", app=second)
    registries = CollectorRegistry(), CollectorRegistry()
    init_prometheus(first, registries[0])
    init_prometheus(second, registries[1])
    probe(first)
    probe(second)
    assert [
        r.get_sample_value("health_check_status", {"check": "c"}) for r in registries
    ] == [1.0, 0.0]


def test_prometheus_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(RuntimeError, match=re.escape("flask-healthchecks[prometheus]")):
        metrics_for(CollectorRegistry())


def test_prometheus_default_registry_is_shared() -> None:
    assert metrics_for() is metrics_for()
