"""The ready-made checks against a real PostgreSQL and a real Redis, up and down.

Every fault is timed from the moment it is in place to the moment the
endpoint reports it; the times are printed at the end of the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, signals
from flask_healthcheck.state import get_state

from .helpers import SignalFlushingClient, record_fault_time
from .servers import BlackHoleServer, PostgresServer, RedisServer

#: Accept headers of every response format; each must keep secrets out.
FORMATS = ["application/json", "application/health+json", "text/html"]


def sqlalchemy_url(url: str) -> str:
    """The fixture's ``postgresql://`` URL with the psycopg 3 driver named:
    SQLAlchemy 2.0 would pick psycopg2."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class Recorder:
    """What the signals of one app said."""

    failed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    changed: list[tuple[str | None, str]] = field(default_factory=list)

    def on_failed(self, sender: Flask, result: CheckResult) -> None:
        self.failed.append(result.name)

    def on_recovered(self, sender: Flask, result: CheckResult) -> None:
        self.recovered.append(result.name)

    def on_changed(
        self, sender: Flask, report: HealthReport, previous: str | None
    ) -> None:
        self.changed.append((previous, report.status))

    def clear(self) -> None:
        self.failed.clear()
        self.recovered.clear()
        self.changed.clear()


@dataclass
class Probe:
    """One request to the endpoint, as a client sees it."""

    status_code: int
    checks: dict[str, dict[str, Any]]
    seconds: float
    text: str


class Endpoint:
    """An app checking one ready-made service, and a client probing it."""

    def __init__(self, app: Flask, client: FlaskClient, recorder: Recorder) -> None:
        self.app = app
        self.client = client
        self.signals = recorder

    def probe(self, accept: str = "application/json") -> Probe:
        start = time.perf_counter()
        response = self.client.get("/health", headers={"Accept": accept})
        seconds = time.perf_counter() - start
        text = response.get_data(as_text=True)
        checks: dict[str, dict[str, Any]] = {}
        if response.mimetype == "application/json":
            checks = response.json["data"]["checks"]  # type: ignore[index]
        return Probe(response.status_code, checks, seconds, text)


@pytest.fixture
def endpoint() -> Iterator[Callable[..., Endpoint]]:
    """Make an :class:`Endpoint`: ``endpoint(service, timeout, **config)``."""
    apps: list[Flask] = []
    with ExitStack() as stack:

        def make(
            service: str,
            timeout: float,
            setup: Callable[[Flask], Any] | None = None,
            **config: Any,
        ) -> Endpoint:
            app = Flask(f"faults-{service}")
            app.test_client_class = SignalFlushingClient
            app.config.update(
                TESTING=True,
                HEALTHCHECK_SERVICES=[service],
                HEALTHCHECK_TIMEOUT=timeout,
                HEALTHCHECK_SHOW_DETAILS=True,
                **config,
            )
            if setup is not None:
                setup(app)
            HealthCheck(app)
            apps.append(app)
            recorder = Recorder()
            stack.enter_context(
                signals.check_failed.connected_to(recorder.on_failed, app)
            )
            stack.enter_context(
                signals.check_recovered.connected_to(recorder.on_recovered, app)
            )
            stack.enter_context(
                signals.health_changed.connected_to(recorder.on_changed, app)
            )
            return Endpoint(app, app.test_client(), recorder)

        yield make
    for app in apps:
        # The app's own Flask-SQLAlchemy engines are closed here, not by
        # the garbage collector when the dropped app is collected.
        extension = app.extensions.get("sqlalchemy")
        if extension is not None:
            with app.app_context():
                for engine in extension.engines.values():
                    engine.dispose()


def assert_up_with_latency(ep: Endpoint) -> None:
    """``ep`` passes, and its check measures a latency in milliseconds."""
    probe = ep.probe()
    assert probe.status_code == 200, probe.checks
    with ep.app.app_context():
        (result,) = get_state(ep.app).run(fresh=True, deliver=True).checks
    assert result.observed_unit == "ms"
    assert 0 < result.observed_value < 1000


def assert_outage_and_recovery(
    endpoint: Endpoint, server: PostgresServer | RedisServer, fault: str
) -> None:
    """Up, stopped while the app runs, started again: what the issue asks."""
    name = endpoint.app.config["HEALTHCHECK_SERVICES"][0]
    timeout = endpoint.app.config["HEALTHCHECK_TIMEOUT"]
    up = endpoint.probe()
    assert up.status_code == 200, up.checks
    assert up.checks[name]["status"] == "pass"
    assert endpoint.signals == Recorder()

    server.stop()
    down = endpoint.probe()
    record_fault_time(fault, down.seconds, timeout)
    assert down.status_code == 500
    assert down.checks[name]["status"] == "fail"
    assert down.seconds < timeout
    again = endpoint.probe()
    assert again.status_code == 500
    # check_failed once per failing run; health_changed once for the outage.
    assert endpoint.signals.failed == [name, name]
    assert endpoint.signals.changed == [("pass", "fail")]
    assert endpoint.signals.recovered == []

    server.start()
    endpoint.signals.clear()
    back = endpoint.probe()
    assert back.status_code == 200, back.checks
    assert endpoint.probe().status_code == 200
    assert endpoint.signals.recovered == [name]
    assert endpoint.signals.changed == [("fail", "pass")]
    assert endpoint.signals.failed == []


def assert_no_secret_anywhere(
    endpoint: Endpoint, secret: str, caplog: pytest.LogCaptureFixture
) -> str:
    """Every response format and the log: failing, and without ``secret``."""
    name = endpoint.app.config["HEALTHCHECK_SERVICES"][0]
    error = ""
    with caplog.at_level(logging.DEBUG):
        for accept in FORMATS:
            probe = endpoint.probe(accept)
            assert probe.status_code == 500
            assert secret not in probe.text, accept
            if probe.checks:
                error = probe.checks[name]["error"]
    assert caplog.records, "the failure is logged"
    assert secret not in caplog.text
    return error


def assert_threads_stay_flat(endpoint: Endpoint, fault: str, probes: int = 50) -> None:
    """``probes`` probes of a server that never answers: each fails at the
    timeout at the latest, and no thread piles up."""
    name = endpoint.app.config["HEALTHCHECK_SERVICES"][0]
    timeout = endpoint.app.config["HEALTHCHECK_TIMEOUT"]
    first = endpoint.probe()
    record_fault_time(fault, first.seconds, timeout)
    assert first.status_code == 500
    assert first.seconds < timeout + 0.25
    # A few more probes first: on a busy machine the runner may start a
    # spare thread or two, which then stay idle in its pool for reuse.
    for _ in range(3):
        endpoint.probe()
    before = threading.active_count()
    slowest = 0.0
    for _ in range(probes):
        probe = endpoint.probe()
        assert probe.status_code == 500
        assert probe.checks[name]["status"] == "fail"
        slowest = max(slowest, probe.seconds)
    assert slowest < timeout + 0.25
    assert threading.active_count() <= before + 2


# -- PostgreSQL -----------------------------------------------------------------


def test_postgres_up_passes_with_latency(
    endpoint: Callable[..., Endpoint], postgres_url: str
) -> None:
    ep = endpoint("sqlalchemy", 5.0, DATABASE_URL=sqlalchemy_url(postgres_url))
    assert_up_with_latency(ep)


def test_postgres_outage_and_recovery(
    endpoint: Callable[..., Endpoint], running_postgres: PostgresServer
) -> None:
    ep = endpoint(
        "cursor_backend", 2.0, DATABASE_URL=sqlalchemy_url(running_postgres.url)
    )
    assert_outage_and_recovery(ep, running_postgres, "PostgreSQL stopped")


def test_postgres_outage_and_recovery_with_flask_sqlalchemy(
    endpoint: Callable[..., Endpoint], running_postgres: PostgresServer
) -> None:
    """The app's own engine has no pre-ping: the check still recovers on the
    first run after the restart."""
    ep = endpoint(
        "sqlalchemy",
        2.0,
        setup=SQLAlchemy().init_app,
        SQLALCHEMY_DATABASE_URI=sqlalchemy_url(running_postgres.url),
    )
    assert_outage_and_recovery(
        ep, running_postgres, "PostgreSQL stopped (Flask-SQLAlchemy engine)"
    )


#: Wrong passwords the answers and logs must never show.
WRONG_PG = "Wr0ng-pg-pass"
WRONG_REDIS = "Wr0ng-redis-pass"


def timed_no_secret(
    ep: Endpoint, secret: str, caplog: pytest.LogCaptureFixture, fault: str
) -> str:
    """:func:`assert_no_secret_anywhere`, its time per format recorded as
    ``fault``'s (timeout 5 s); the check's error."""
    start = time.perf_counter()
    error = assert_no_secret_anywhere(ep, secret, caplog)
    record_fault_time(fault, (time.perf_counter() - start) / len(FORMATS), 5.0)
    return error


def test_postgres_wrong_password_is_never_shown(
    endpoint: Callable[..., Endpoint],
    running_postgres: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ep = endpoint(
        "sqlalchemy",
        5.0,
        DATABASE_URL=sqlalchemy_url(running_postgres.url_with_password(WRONG_PG)),
    )
    error = timed_no_secret(ep, WRONG_PG, caplog, "PostgreSQL wrong password")
    assert "password authentication failed" in error
    assert running_postgres.password not in caplog.text


def test_postgres_closed_port_fails_at_once(
    endpoint: Callable[..., Endpoint], refused_port: int
) -> None:
    url = f"postgresql+psycopg://health:pw@127.0.0.1:{refused_port}/health"
    ep = endpoint("sqlalchemy", 2.0, DATABASE_URL=url)
    probe = ep.probe()
    record_fault_time("PostgreSQL closed port", probe.seconds, 2.0)
    assert probe.status_code == 500
    assert "Connection refused" in probe.checks["sqlalchemy"]["error"]
    assert probe.seconds < 2.0


def test_postgres_black_hole_fails_at_the_timeout(
    endpoint: Callable[..., Endpoint], blackhole: BlackHoleServer
) -> None:
    url = f"postgresql+psycopg://health:pw@127.0.0.1:{blackhole.port}/health"
    ep = endpoint("sqlalchemy", 0.4, DATABASE_URL=url)
    assert_threads_stay_flat(ep, "PostgreSQL black hole")
    # libpq waits at least 2 s to connect, longer than this check's timeout:
    # the runner reported each probe at the timeout, and did not start the
    # check again while it was still waiting.
    assert blackhole.accepted <= 3


# -- Redis ------------------------------------------------------------------------


def test_redis_up_passes_with_latency(
    endpoint: Callable[..., Endpoint], redis_url: str
) -> None:
    ep = endpoint("redis", 5.0, REDIS_URL=redis_url)
    assert_up_with_latency(ep)


def test_redis_outage_and_recovery(
    endpoint: Callable[..., Endpoint], running_redis: RedisServer
) -> None:
    ep = endpoint("redis", 2.0, REDIS_URL=running_redis.url)
    assert_outage_and_recovery(ep, running_redis, "Redis stopped")


def test_redis_client_of_the_app_is_followed(
    endpoint: Callable[..., Endpoint], running_redis: RedisServer
) -> None:
    """A client in ``app.extensions["redis"]`` (as Flask-Redis keeps it)
    names the server, with its password; REDIS_URL is not needed."""

    def setup(app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(running_redis.url)

    ep = endpoint("redis", 2.0, setup=setup)
    assert_outage_and_recovery(ep, running_redis, "Redis stopped (app's client)")


def test_redis_wrong_password_is_never_shown(
    endpoint: Callable[..., Endpoint],
    running_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ep = endpoint("redis", 5.0, REDIS_URL=running_redis.url_with_password(WRONG_REDIS))
    error = timed_no_secret(ep, WRONG_REDIS, caplog, "Redis wrong password")
    assert error.startswith("AuthenticationError:")
    assert running_redis.password is not None
    assert running_redis.password not in caplog.text


def test_redis_closed_port_fails_at_once(
    endpoint: Callable[..., Endpoint], refused_port: int
) -> None:
    ep = endpoint("redis", 2.0, REDIS_URL=f"redis://127.0.0.1:{refused_port}/0")
    probe = ep.probe()
    record_fault_time("Redis closed port", probe.seconds, 2.0)
    assert probe.status_code == 500
    assert probe.checks["redis"]["error"].startswith("ConnectionError:")
    assert probe.seconds < 2.0


@pytest.mark.slow
def test_redis_black_hole_fails_at_the_timeout(
    endpoint: Callable[..., Endpoint], blackhole: BlackHoleServer
) -> None:
    ep = endpoint("redis", 0.3, REDIS_URL=f"redis://127.0.0.1:{blackhole.port}/0")
    assert_threads_stay_flat(ep, "Redis black hole")
    # On a busy machine a probe may have reached the check's 0.3 s timeout
    # with the client's call still waiting; let it end, so this probe runs
    # the check afresh instead of reporting it still running.
    time.sleep(0.3)
    probe = ep.probe()
    # The client's own read timeout, below the check's, gave up first.
    assert probe.checks["redis"]["error"].startswith("TimeoutError:")
