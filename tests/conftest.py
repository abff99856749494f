from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import HealthCheck

if TYPE_CHECKING:
    from .browser import Browser


@pytest.fixture
def app() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config.update(TESTING=True)
    yield app
    state = app.extensions.get("healthcheck")
    if state is not None:
        state.background.stop(timeout=5)


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    return HealthCheck(app)


@pytest.fixture
def client(app: Flask, health: HealthCheck) -> FlaskClient:
    return app.test_client()


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
