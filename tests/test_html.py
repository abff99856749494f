"""The ``text/html`` status page, read as markup (the browser test looks at it)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import (
    CheckResult,
    ConfigurationError,
    HealthCheck,
    HealthReport,
    Status,
)
from flask_healthcheck.history import (
    MAX_AGE,
    MAX_RESULTS,
    Entry,
    Snapshot,
    Trend,
)
from flask_healthcheck.status_page import render_status_page

from .helpers import strict_json

HTML = {"Accept": "text/html"}


class Page(HTMLParser):
    """The tags, attributes and visible text of a page."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k) == v for k, v in attrs.items())
        ]


def page(app: Flask, url: str = "/health") -> tuple[Any, Page]:
    response = app.test_client().get(url, headers=HTML)
    return response, Page(response.text)


def make(app: Flask, **config: Any) -> HealthCheck:
    app.config.update(config)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    health.add_check(
        lambda: CheckResult(status="pass", observed_value=42, observed_unit="%"),
        name="disk",
    )
    return health


def test_a_passing_page(app: Flask) -> None:
    make(app)
    response, parsed = page(app)
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert parsed.find("header", **{"class": "banner pass"})
    assert "Healthy" in parsed.text
    assert parsed.find("title")
    assert "<title>Healthy</title>" in response.text


def test_a_failing_page_is_red_and_answers_the_failure_status(app: Flask) -> None:
    health = make(app, HEALTHCHECK_FAILURE_STATUS=503)
    health.add_check(lambda: False, name="queue")
    response, parsed = page(app)
    assert response.status_code == 503
    assert parsed.find("header", **{"class": "banner fail"})
    assert "Unhealthy" in parsed.text
    css = app.test_client().get("/health/status.css").text
    assert "--fail: #cf222e;" in css
    assert ".banner.fail, .badge.fail { background: var(--fail); }" in css


def test_without_details_only_the_banner_shows(app: Flask) -> None:
    health = make(app)
    health.add_check(lambda: False, name="queue")
    response, parsed = page(app)
    assert not parsed.find("table")
    for name in ("database", "disk", "queue"):
        assert name not in response.text
    assert "Per-check details are hidden." in " ".join(parsed.text)


def test_with_details_a_row_per_check(app: Flask) -> None:
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)

    def queue() -> bool:
        raise TimeoutError("broker at amqp://guest:s3cr3tpw@mq:5672 timed out")

    health.add_check(queue, critical=False)
    response, parsed = page(app)
    assert response.status_code == 200
    rows = [row for row in parsed.find("tr") if "check" in (row.get("class") or "")]
    assert [row["class"] for row in rows] == [
        "check pass",
        "check pass",
        "check fail",
    ]
    text = " ".join(parsed.text)
    assert "database" in text and "queue" in text
    assert "observed: 42 %" in text
    assert "TimeoutError: broker at amqp://guest:***@mq:5672 timed out" in text
    assert "s3cr3tpw" not in response.text
    assert "3 checks, 1 not passing" in text
    assert len(parsed.find("time")) == 3
    assert parsed.find("header", **{"class": "banner warn"})


def test_everything_shown_is_escaped(app: Flask) -> None:
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True,
        HEALTHCHECK_SERVICE_ID="<b>svc</b>",
        HEALTHCHECK_DESCRIPTION="<img src=x onerror=alert(1)>",
        HEALTHCHECK_VERSION='1"><script>',
    )
    health = HealthCheck(app)

    def evil() -> bool:
        raise ValueError("<script>alert('x')</script>")

    health.add_check(evil, name="<script>name<\\script>")
    response, parsed = page(app)
    assert "<script" not in response.text
    assert "<img" not in response.text
    assert "<b>" not in response.text
    assert not parsed.find("script")
    assert "&lt;script&gt;name&lt;\\script&gt;" in response.text
    assert "ValueError: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in (
        response.text
    )
    assert "<title>Unhealthy · &lt;b&gt;svc&lt;/b&gt;</title>" in response.text


def test_the_page_has_no_inline_style_or_script(app: Flask) -> None:
    make(app, HEALTHCHECK_SHOW_DETAILS=True)
    response, parsed = page(app)
    assert not parsed.find("script")
    assert not parsed.find("style")
    assert not parsed.find("img")
    for _, attrs in parsed.tags:
        assert "style" not in attrs
        assert "src" not in attrs
        assert not any(name.startswith("on") for name in attrs)
    # Its two links: the stylesheet and the icon, both under the main URL.
    icon, stylesheet = parsed.find("link")
    assert icon["rel"] == "icon"
    assert (icon["href"] or "").startswith("/health/status.svg?status=pass&v=")
    assert stylesheet["rel"] == "stylesheet"
    assert (stylesheet["href"] or "").startswith("/health/status.css?v=")
    assert "url(" not in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_the_assets_are_served_cacheable_under_the_main_url(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/readyz": ["ready"]}
    make(app)
    client = app.test_client()
    css = client.get("/health/status.css")
    assert css.status_code == 200
    assert css.content_type == "text/css; charset=utf-8"
    assert css.headers["Cache-Control"] == "public, max-age=86400"
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        client.get(
            "/health/status.css", headers={"If-None-Match": css.headers["ETag"]}
        ).status_code
        == 304
    )
    icon = client.get("/health/status.svg?status=fail")
    assert icon.content_type == "image/svg+xml; charset=utf-8"
    assert "#cf222e" in icon.text
    assert "#59636e" in client.get("/health/status.svg?status=<x>").text
    # The page of every endpoint links the main URL's assets.
    _, parsed = page(app, "/readyz")
    assert (parsed.find("link")[1]["href"] or "").startswith("/health/status.css")
    assert client.get("/readyz/status.css").status_code == 404


def test_the_assets_follow_the_script_root(app: Flask) -> None:
    make(app)
    response = app.test_client().get(
        "/health", headers=HTML, environ_overrides={"SCRIPT_NAME": "/svc"}
    )
    assert 'href="/svc/health/status.css?v=' in response.text


@pytest.mark.parametrize("name", ["status.css", "status.svg"])
def test_the_asset_names_are_reserved(app: Flask, name: str) -> None:
    health = make(app)
    with pytest.raises(ConfigurationError, match="status page"):
        health.add_check(lambda: True, name=name)


def test_readable_on_a_phone(app: Flask) -> None:
    make(app)
    _, parsed = page(app)
    assert parsed.find(
        "meta", name="viewport", content="width=device-width, initial-scale=1"
    )


@pytest.mark.parametrize(("refresh", "meta"), [(10, "10"), (3, "3"), (0, None)])
def test_the_refresh_interval_is_configurable(
    app: Flask, refresh: int, meta: str | None
) -> None:
    make(app, HEALTHCHECK_HTML_REFRESH=refresh)
    _, parsed = page(app)
    found = parsed.find("meta", **{"http-equiv": "refresh"})
    assert [tag["content"] for tag in found] == ([meta] if meta else [])


def test_service_identity_shows_when_configured(app: Flask) -> None:
    make(
        app,
        HEALTHCHECK_SERVICE_ID="orders-api",
        HEALTHCHECK_DESCRIPTION="Order taking",
        HEALTHCHECK_VERSION="1",
        HEALTHCHECK_RELEASE_ID="1.4.2-9f3c2a1",
    )
    response, parsed = page(app)
    assert "<title>Healthy · orders-api</title>" in response.text
    assert "Order taking" in parsed.text
    assert any(line.startswith("orders-api · Status: pass") for line in parsed.text)
    assert "Version 1. Release 1.4.2-9f3c2a1." in " ".join(parsed.text)


@pytest.mark.parametrize(
    ("url", "code", "headline", "message"),
    [
        ("/health/nope", 404, "Not Found", "unknown check 'nope'"),
        ("/health?exclude=<x>", 400, "Bad Request", "unknown check '<x>'"),
    ],
)
def test_refused_requests_get_a_page_too(
    app: Flask, url: str, code: int, headline: str, message: str
) -> None:
    make(app)
    response, parsed = page(app, url)
    assert response.status_code == code
    assert response.content_type == "text/html; charset=utf-8"
    assert parsed.find("header", **{"class": "banner other"})
    assert headline in parsed.text
    assert message in parsed.text
    assert not parsed.find("meta", **{"http-equiv": "refresh"})


def test_head_answers_no_body(app: Flask) -> None:
    make(app)
    response = app.test_client().head("/health", headers=HTML)
    assert (response.status_code, response.data) == (200, b"")
    assert response.content_type == "text/html; charset=utf-8"


def test_a_thousand_checks_with_full_histories_make_a_page_under_1_mb() -> None:
    # Bytes are deterministic (the time is measured in benchmarks/page.py):
    # every check with the most results the history keeps, flapping so that
    # no cells could merge, every one shown with details.
    statuses: tuple[Status, ...] = ("pass", "fail", "warn")
    entries = tuple(
        Entry(1e9 + 10 * run, statuses[run % 3], 0.001 * (run % 7))
        for run in range(MAX_RESULTS)
    )
    trend = Trend(entries, "warn", entries[-1].at, len(entries) - 1)
    names = [f"dependency_{i:04d}" for i in range(1000)]
    snapshot = Snapshot(
        now=entries[-1].at + 5,
        started_at=1e9,
        max_results=MAX_RESULTS,
        max_age=MAX_AGE,
        overall=trend,
        checks=dict.fromkeys(names, trend),
    )
    report = HealthReport.from_results(
        [
            CheckResult(name=name, status="fail", duration=0.0042, error="E: " * 20)
            for name in names
        ]
    )
    page = render_status_page(report, details=True, refresh=10, history=snapshot)
    assert len(page.encode()) < 1_000_000
    assert page.count('<tr class="check fail">') == 1000
    assert page.count("up (240 of 360 runs") == 1001  # each check's stats stay
    # A page of a few checks still draws each run with its title.
    few = render_status_page(
        HealthReport.from_results(report.checks[:3]),
        details=True,
        refresh=10,
        history=snapshot,
    )
    assert few.count("<title>") == 1 + 4 * MAX_RESULTS + 3  # page, cells, sparks


def test_the_status_page_escapes_a_hostile_check_name_everywhere(app: Flask) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    name = "<script>alert(1)<\\script>\"'><svg onload=alert(2)>"
    health.add_check(lambda: False, name=name)
    client = app.test_client()
    for _ in range(3):
        client.get("/health")
    page = client.get("/health", headers={"Accept": "text/html"}).text
    assert "<script>" not in page and "<svg onload" not in page
    assert "&lt;script&gt;" in page
    history = client.get("/health/history").data
    assert name in strict_json(history)["checks"]
