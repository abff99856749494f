"""The status page in a real browser: the example app served by waitress on
a loopback port, loaded in headless Chromium, for a passing, a degraded and
a failing state. Screenshots go to the test's ``tmp_path``.
"""

from __future__ import annotations

import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from example_app import create_app
from flask_healthcheck import HealthCheck

from . import browser as harness
from .browser import DESKTOP, PHONE, Browser, serve_wsgi

GREEN = "rgb(26, 127, 55)"  # #1a7f37
AMBER = "rgb(227, 160, 8)"  # #e3a008
RED = "rgb(207, 34, 46)"  # #cf222e


@pytest.fixture
def example(tmp_path: Path) -> Flask:
    """The example app on a database of its own, in debug mode."""
    return create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}", "DEBUG": True}
    )


@pytest.fixture
def base_url(example: Flask) -> Iterator[str]:
    with serve_wsgi(example) as url:
        yield url


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def banner(browser: Browser) -> str:
    return browser.computed_style("header.banner", "background-color")


def test_pass_warn_and_fail_as_people_see_them(
    browser: Browser, example: Flask, base_url: str, tmp_path: Path
) -> None:
    browser.set_window_size(*DESKTOP)

    # Passing: green, a row per check (in debug mode the example shows
    # details to requests straight from 127.0.0.1, which the browser's are).
    browser.open(f"{base_url}/health")
    text = browser.visible_text()
    assert "Healthy" in text
    assert "Status: pass" in text
    assert "schema_ready" in text and "disk_space" in text
    assert banner(browser) == GREEN
    assert browser.computed_style("tr.check.pass .badge", "background-color") == GREEN
    shot = browser.screenshot(tmp_path / "pass.png")
    assert png_size(shot) == DESKTOP

    # Degraded: the non-critical disk check warns; amber, still 200.
    example.config["MIN_FREE_DISK_PERCENT"] = 101
    browser.open(f"{base_url}/health")
    text = browser.visible_text()
    assert "Degraded" in text
    assert "Status: warn" in text
    assert "% of the disk is free" in text
    assert banner(browser) == AMBER
    browser.screenshot(tmp_path / "warn.png")

    # Failing: the table the app needs is gone; red, with the error.
    example.config["MIN_FREE_DISK_PERCENT"] = 0
    engine: sa.Engine = example.extensions["example_engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    browser.open(f"{base_url}/health")
    text = browser.visible_text()
    assert "Unhealthy" in text
    assert "Status: fail" in text
    assert "1 not passing" in text
    assert banner(browser) == RED
    assert browser.computed_style("tr.check.fail .badge", "background-color") == RED
    shot = browser.screenshot(tmp_path / "fail.png")
    assert shot.stat().st_size > 1000


def test_the_page_loads_nothing_else_and_runs_no_script(
    browser: Browser, base_url: str
) -> None:
    browser.set_window_size(*DESKTOP)
    browser.open(f"{base_url}/readyz")
    driver = browser.driver
    assert driver.execute_script("return document.scripts.length") == 0
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources == []
    assert "Healthy" in browser.visible_text()


def test_readable_on_a_phone(
    browser: Browser, example: Flask, base_url: str, tmp_path: Path
) -> None:
    with example.extensions["example_engine"].begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    browser.set_window_size(*PHONE, mobile=True)
    try:
        browser.open(f"{base_url}/health")
        driver = browser.driver
        # Nothing wider than the screen: no sideways scrolling to read it.
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= innerWidth"
        )
        # The table turns into one card per check, each cell labelled.
        assert browser.computed_style("thead", "display") == "none"
        assert browser.computed_style("tbody tr", "display") == "block"
        labels = driver.execute_script(
            "return [...document.querySelectorAll('tr.check.fail td[data-label]')]"
            ".map(td => getComputedStyle(td, '::before').content)"
        )
        assert labels == ['"Status"', '"Duration"', '"Last run"']
        text = browser.visible_text()
        assert "Unhealthy" in text and "schema_ready" in text
        assert banner(browser) == RED
        shot = browser.screenshot(tmp_path / "phone.png")
        assert png_size(shot) == PHONE
    finally:
        browser.set_window_size(*DESKTOP)


def test_the_page_reloads_itself(browser: Browser) -> None:
    app = Flask("reloading")
    app.config["HEALTHCHECK_HTML_REFRESH"] = 1
    health = HealthCheck(app)
    runs: list[float] = []
    lock = threading.Lock()

    @health.check
    def counted() -> bool:
        with lock:
            runs.append(time.monotonic())
        return True

    with serve_wsgi(app) as url:
        browser.open(f"{url}/health")
        deadline = time.monotonic() + 10
        while len(runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(runs) >= 2, "the page did not reload within 10 s"


def test_the_server_answers_plain_clients_the_seed_bytes(base_url: str) -> None:
    # The same server, asked as a probe would (no Accept): the envelope.
    request = urllib.request.Request(
        f"{base_url}/livez", headers={"Accept": "*/*", "X-Probe": "1"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Vary"] == "Accept"
        assert response.read().startswith(b'{"status": "success"')


def test_missing_chromium_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(harness, "find_chromium", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        harness.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium-driver"):
        harness.require_chromium()
