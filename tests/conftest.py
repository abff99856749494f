from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import HealthCheck

from .gunicorn import gunicorn_server  # noqa: F401 - fixture
from .helpers import FAULT_TIMES, LocalHTTPServer, SignalFlushingClient
from .prometheus import prometheus_server  # noqa: F401 - fixture
from .server_fixtures import (  # noqa: F401 - fixtures
    blackhole,
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
    refused_port,
    running_postgres,
    running_redis,
)
from .uwsgi import uwsgi_server  # noqa: F401 - fixture

if TYPE_CHECKING:
    from .browser import Browser


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config.update(TESTING=True)
    app.test_client_class = SignalFlushingClient
    yield app
    state = app.extensions.get("healthcheck")
    if state is not None:
        state.refresher.stop(timeout=5)


@pytest.fixture
def release(app: Flask) -> Iterator[threading.Event]:
    """An event set at teardown, before the app's, so that test checks and
    subscribers that wait on it (to hang) return."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    return HealthCheck(app)


@pytest.fixture
def client(app: Flask, health: HealthCheck) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    """An HTTP server on 127.0.0.1 for this test; see :class:`LocalHTTPServer`."""
    with LocalHTTPServer() as server:
        yield server


#: Fixtures that start a real server process: a test that asks for one,
#: even through another fixture, is marked ``server``.
SERVER_FIXTURES = frozenset(
    {
        "browser",
        "gunicorn_server",
        "postgres_server",
        "prometheus_server",
        "redis_server",
        "uwsgi_server",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` every test that uses a server fixture, so that
    ``-m "not server"`` leaves them out without a mark on each."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How long each fault took to be reported, for the release notes."""
    if FAULT_TIMES:
        terminalreporter.section("time until a fault is reported")
        for fault, seconds, timeout in FAULT_TIMES:
            terminalreporter.write_line(
                f"{fault:<48} {seconds * 1000:8.1f} ms  (check timeout {timeout:g} s)"
            )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (1280x800; tests that need
    another size call ``set_window_size``). Skipped when Chromium is not
    installed, and failed instead when ``CI`` is set, so a CI image that
    lost its apt step can't go green silently.

    Imported here, not at the top, so only the browser tests need selenium.
    """
    from .browser import DESKTOP, Browser, require_chromium

    chromium, chromedriver = require_chromium()
    with Browser(chromium, chromedriver, window_size=DESKTOP) as b:
        yield b


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
