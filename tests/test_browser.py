"""The status page in a real browser: the example app served by waitress on
a loopback port, loaded in headless Chromium, for a passing, a degraded and
a failing state. Screenshots go to the test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import re
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_talisman import Talisman

from example_app import create_app
from flask_healthcheck import CheckResult, HealthCheck

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


def shows(browser: Browser, url: str, colour: str, *words: str) -> None:
    """The page at ``url`` shows each of ``words`` under a ``colour`` banner."""
    browser.open(url)
    text = browser.visible_text()
    for word in words:
        assert word in text
    assert banner(browser) == colour


def test_pass_warn_and_fail_as_people_see_them(
    browser: Browser, example: Flask, base_url: str, tmp_path: Path
) -> None:
    browser.set_window_size(*DESKTOP)

    # Passing: green, a row per check (in debug mode the example shows
    # details to requests straight from 127.0.0.1, which the browser's are).
    words: tuple[str, ...] = ("Healthy", "Status: pass", "schema_ready", "disk_space")
    shows(browser, f"{base_url}/health", GREEN, *words)
    assert browser.computed_style("tr.check.pass .badge", "background-color") == GREEN
    shot = browser.screenshot(tmp_path / "pass.png")
    assert png_size(shot) == DESKTOP

    # Degraded: the non-critical disk check warns; amber, still 200.
    example.config["MIN_FREE_DISK_PERCENT"] = 101
    words = ("Degraded", "Status: warn", "% of the disk is free")
    shows(browser, f"{base_url}/health", AMBER, *words)
    browser.screenshot(tmp_path / "warn.png")

    # Failing: the table the app needs is gone; red, with the error.
    example.config["MIN_FREE_DISK_PERCENT"] = 0
    engine: sa.Engine = example.extensions["example_engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    shows(
        browser, f"{base_url}/health", RED, "Unhealthy", "Status: fail", "1 not passing"
    )
    assert browser.computed_style("tr.check.fail .badge", "background-color") == RED
    shot = browser.screenshot(tmp_path / "fail.png")
    assert shot.stat().st_size > 1000


def test_the_page_loads_only_its_stylesheet_and_runs_no_script(
    browser: Browser, base_url: str
) -> None:
    browser.set_window_size(*DESKTOP)
    browser.open(f"{base_url}/readyz")
    driver = browser.driver
    assert driver.execute_script("return document.scripts.length") == 0
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    # Only its own stylesheet and icon (the icon may load later, or come
    # from the cache), under the main URL, same origin.
    loaded = {url.split("?")[0] for url in resources}
    assert f"{base_url}/health/status.css" in loaded
    assert loaded <= {f"{base_url}/health/status.css", f"{base_url}/health/status.svg"}
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


def test_the_server_answers_plain_clients_the_envelope_bytes(base_url: str) -> None:
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


def history_app() -> tuple[Flask, HealthCheck]:
    """An app whose ``payments_api`` check passes and fails by turns, whose
    ``database`` gets slow now and then, and whose non-critical ``search``
    warns every seventh run."""
    app = Flask("history")
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True,
        HEALTHCHECK_HTML_REFRESH=0,
        HEALTHCHECK_SERVICE_ID="orders-api",
    )
    health = HealthCheck(app)
    runs = {"database": 0, "payments_api": 0, "search": 0}

    def count(name: str) -> int:
        runs[name] += 1
        return runs[name]

    @health.check
    def database() -> None:
        run = count("database")
        time.sleep(0.012 if run % 9 == 0 else 0.002 + 0.0005 * (run % 4))

    @health.check
    def payments_api() -> bool:
        return count("payments_api") % 2 == 1

    @health.check(critical=False)
    def search() -> CheckResult:
        if count("search") % 7 == 0:
            return CheckResult(status="warn", error="3 of 5 nodes answer")
        return CheckResult(status="pass")

    return app, health


def strip_classes(browser: Browser) -> list[list[str]]:
    """The colour class of each cell, per strip: the overall one first."""
    cells: list[list[str]] = browser.driver.execute_script(
        "return [...document.querySelectorAll('svg.strip')].map(svg =>"
        " [...svg.querySelectorAll('rect:not(.track)')]"
        ".map(r => r.getAttribute('class')))"
    )
    return cells


def test_the_recent_runs_as_people_see_them(browser: Browser, tmp_path: Path) -> None:
    app, health = history_app()
    with app.app_context():
        for _ in range(39):
            health.run()
    browser.set_window_size(*DESKTOP)
    with serve_wsgi(app) as url:
        browser.open(f"{url}/health")  # the 40th run
        overall, database, payments, search = strip_classes(browser)
        assert payments == ["p", "f"] * 20
        # A failing payments_api fails the app; a warning search degrades it.
        assert overall == [
            "f" if run % 2 == 0 else "w" if run % 7 == 0 else "p"
            for run in range(1, 41)
        ]
        assert database == ["p"] * 40
        assert search == (["p"] * 6 + ["w"]) * 5 + ["p"] * 5
        text = browser.visible_text()
        assert "Unhealthy" in text
        assert "Recent runs · this process, since" in text
        assert "50 % up (20 of 40 runs in the last" in text
        assert "39 transitions · failing for" in text
        assert "100 % up (40 of 40 runs" in text  # search warns, still up
        driver = browser.driver
        fills = driver.execute_script(
            "return ['p', 'w', 'f'].map(c => getComputedStyle("
            "document.querySelector('tr.trend svg.strip rect.' + c)).fill)"
        )
        assert fills == [GREEN, AMBER, RED]
        titles = driver.execute_script(
            "return [...document.querySelectorAll('tr.trend svg.strip rect title')]"
            ".map(t => t.textContent)"
        )
        assert len(titles) == 120
        assert re.fullmatch(r"\d\d:\d\d:\d\d UTC · fail · \d+\.\d ms", titles[41])
        assert len(driver.find_elements("css selector", "svg.spark polyline")) == 3
        assert driver.execute_script("return document.scripts.length") == 0
        assert driver.execute_script(
            "return performance.getEntriesByType('resource').length"
        ) in (1, 2)  # the stylesheet, and the icon unless cached
        shot = browser.screenshot(tmp_path / "history-desktop.png")
        assert png_size(shot) == DESKTOP

        browser.set_window_size(*PHONE, mobile=True)
        try:
            browser.open(f"{url}/health")  # the 41st run
            assert driver.execute_script(
                "return document.documentElement.scrollWidth <= innerWidth"
            )
            strips = strip_classes(browser)
            assert [len(cells) for cells in strips] == [41] * 4
            width = driver.execute_script(
                "return document.querySelector('tr.trend svg.strip')"
                ".getBoundingClientRect().width"
            )
            assert 300 < width <= PHONE[0]
            shot = browser.screenshot(tmp_path / "history-phone.png")
            assert png_size(shot) == PHONE
        finally:
            browser.set_window_size(*DESKTOP)


#: Records every violation of a page's content security policy, from the
#: start of each document (DevTools runs it before the page's own content).
LISTEN_FOR_CSP = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@contextlib.contextmanager
def csp_violations(browser: Browser) -> Iterator[Callable[[], list[str]]]:
    """Within the block, the returned function gives the violations of the
    current page so far."""
    driver = browser.driver
    added = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": LISTEN_FOR_CSP}
    )

    def violations() -> list[str]:
        found: list[str] = driver.execute_script("return window.cspViolations")
        return found

    try:
        yield violations
    finally:
        driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument",
            {"identifier": added["identifier"]},
        )


def test_styled_under_flask_talismans_default_policy(
    browser: Browser, tmp_path: Path
) -> None:
    """Flask-Talisman as its README sets it up (HTTPS forced, CSP
    ``default-src 'self'``): the page, over plain HTTP, is the extension's,
    fully styled, and the browser blocks nothing."""
    app = Flask("talisman")
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True, HEALTHCHECK_HTML_REFRESH=0)
    talisman = Talisman(app)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="cache")
    health.add_check(lambda: False, name="database")

    @app.route("/")
    def index() -> str:
        return "the app"

    @app.route("/inline")
    @talisman(force_https=False)  # type: ignore[untyped-decorator]
    def inline() -> str:
        return "<!doctype html><style>body { color: red; }</style>"

    browser.set_window_size(*DESKTOP)
    with serve_wsgi(app) as url, csp_violations(browser) as violations:
        # The check: a page with inline style breaks the policy.
        browser.open(f"{url}/inline")
        assert violations() == ["style-src-elem inline"]
        browser.open(f"{url}/health")
        driver = browser.driver
        assert driver.current_url == f"{url}/health"  # not sent to https://
        assert "Unhealthy" in browser.visible_text()
        assert banner(browser) == RED
        failing = browser.computed_style("tr.check.fail .badge", "background-color")
        passing = browser.computed_style("tr.check.pass .badge", "background-color")
        assert (failing, passing) == (RED, GREEN)
        assert browser.computed_style("tr.check.fail .error", "color") == RED
        assert driver.execute_script("return document.styleSheets.length") == 1
        time.sleep(0.3)  # the icon loads after the page
        assert violations() == []
        shot = browser.screenshot(tmp_path / "talisman.png")
        assert png_size(shot) == DESKTOP


def test_the_page_refuses_to_be_framed(browser: Browser) -> None:
    app = Flask("framing")
    HealthCheck(app)

    @app.route("/frame")
    def frame() -> str:
        return '<!doctype html><iframe id="f" src="/health"></iframe>'

    @app.route("/inline-frame")
    def inline_frame() -> str:
        return '<!doctype html><iframe id="f" src="/elsewhere"></iframe>'

    frame_document = (
        "const d = document.getElementById('f').contentDocument;"
        " return d === null ? null : d.URL;"
    )
    with serve_wsgi(app) as url:
        # The check: a page of the same origin is readable in a frame.
        browser.open(f"{url}/inline-frame")
        time.sleep(0.3)
        assert browser.driver.execute_script(frame_document) == f"{url}/elsewhere"
        browser.open(f"{url}/frame")
        time.sleep(0.3)
        # The status page is refused: the frame holds the browser's error page.
        assert browser.driver.execute_script(frame_document) is None
