"""``text/plain``, and the DEBUG line per passing check."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck

TEXT = {"Accept": "text/plain"}
URL_SECRET = "hunter22"
URL = f"postgresql://app:{URL_SECRET}@db.internal/app"


def get(app: Flask, url: str = "/health", **headers: str) -> Any:
    return app.test_client().get(url, headers={**TEXT, **headers})


def make(app: Flask, **config: Any) -> HealthCheck:
    app.config.update(config)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    return health


def test_without_details_only_the_status(app: Flask) -> None:
    make(app)
    response = get(app)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Accept" in response.headers["Vary"]
    assert response.text == "pass\n"


@pytest.mark.parametrize(
    ("critical", "code", "status"), [(True, 500, "fail"), (False, 200, "warn")]
)
def test_failing_and_warning(
    app: Flask, critical: bool, code: int, status: str
) -> None:
    health = make(app)

    def search() -> None:
        raise ConnectionError(f"no route to {URL}")

    health.add_check(search, critical=critical)
    response = get(app)
    assert response.status_code == code
    assert response.text == f"{status}\n"


def test_with_details_a_line_per_check(app: Flask) -> None:
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)

    def search() -> None:
        raise ConnectionError(f"no route to {URL}\nsecond line")

    health.add_check(search)
    health.add_check(lambda: CheckResult(status="warn", error="disk\n91%"), name="disk")
    response = get(app)
    assert response.status_code == 500
    lines = response.text.splitlines()
    assert lines[0] == "fail"
    assert len(lines) == 4
    assert lines[1].startswith("database: pass, ") and lines[1].endswith(" ms")
    assert lines[2].startswith("search: fail, ")
    assert lines[2].endswith(
        ", ConnectionError: no route to postgresql://app:***@db.internal/app"
        " second line"
    )
    assert lines[3].startswith("disk: warn, ") and lines[3].endswith(", disk\\x0a91%")
    assert URL_SECRET not in response.text


def test_names_and_errors_stay_on_one_line(app: Flask) -> None:
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)
    health.add_check(
        lambda: CheckResult(status="fail", error="a\r\nfail: forged\x1b[31m"),
        name="two\nlines",
    )
    lines = get(app).text.splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("two\\x0alines: fail, ")
    assert lines[2].endswith(", a\\x0d\\x0afail: forged\\x1b[31m")


def test_sections_follow_the_checks(app: Flask) -> None:
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)
    health.add_section("build", lambda: {"commit": "4f2a9c1", "url": URL})
    health.add_section("note", lambda: "line one\nline two")
    lines = get(app).text.splitlines()
    assert lines[0] == "pass"
    assert lines[1].startswith("database: pass")
    assert lines[2:] == [
        "",
        'build: {"commit": "4f2a9c1", "url": "postgresql://app:***@db.internal/app"}',
        "note: line one\\x0aline two",
    ]


def test_refusals_say_fail_then_why(app: Flask) -> None:
    make(app)
    response = get(app, "/health/nope")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "fail\ncheck: unknown check 'nope'\n"
    response = get(app, "/health?exclude=a%0Ab")
    assert response.status_code == 400
    assert response.text == "fail\nexclude: unknown check 'a\\nb'\n"


def test_head_answers_no_body(app: Flask) -> None:
    make(app)
    response = app.test_client().head("/health", headers=TEXT)
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_utf8(app: Flask) -> None:
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)
    health.add_check(
        lambda: (False, "Datenbank nicht erreichbar: Zeitüberschreitung"), name="Größe"
    )
    response = get(app)
    assert "Größe: fail, " in response.text
    assert response.text.endswith("Zeitüberschreitung\n")


def test_format_text(app: Flask) -> None:
    make(app, HEALTHCHECK_SHOW_DETAILS=True)
    response = app.test_client().get(
        "/health?format=text", headers={"Accept": "application/json"}
    )
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("pass\ndatabase: pass, ")


# -- the DEBUG line per passing check ------------------------------------------


def passed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "flask_healthcheck" and "passed in" in record.getMessage()
    ]


def test_a_debug_line_per_passing_check(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    health = make(app)
    health.add_check(lambda: CheckResult(status="warn"), name="disk")

    def search() -> None:
        raise ConnectionError(URL)

    health.add_check(search)
    app.config["CACHE_PASSWORD"] = "c0nfig-s3cret-value"
    health.add_check(lambda: (True, URL), name="cache c0nfig-s3cret-value")
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        app.test_client().get("/health")
        with app.app_context():
            health.run()
    lines = passed_lines(caplog)
    assert len(lines) == 4, lines
    assert lines[0].startswith(f"Health check 'database' of app {app.name!r} passed in")
    assert lines[0].endswith(" ms.")
    assert lines[1].startswith("Health check 'cache ***' of app")
    assert not any("disk" in line or "search" in line for line in lines)
    assert "c0nfig-s3cret-value" not in caplog.text
    for record in caplog.records:
        if "passed in" in record.getMessage():
            assert record.levelno == logging.DEBUG


def test_a_cached_result_is_no_new_line(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    make(app, HEALTHCHECK_CACHE_TTL=60)
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        for _ in range(3):
            app.test_client().get("/health")
    assert len(passed_lines(caplog)) == 1


def test_no_line_at_info(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    health = make(app)
    with caplog.at_level(logging.INFO, logger="flask_healthcheck"):
        app.test_client().get("/health")
        with app.app_context():
            health.run()
    assert passed_lines(caplog) == []
    assert not [r for r in caplog.records if r.levelno < logging.INFO]


#: A file name that is not UTF-8, as ``os.fsdecode`` gives it: a lone surrogate.
UNDECODABLE = os.fsdecode(b"/data/report-\xff.csv")


def test_a_lone_surrogate_keeps_the_format(app: Flask) -> None:
    """A dependency's message naming a file that isn't UTF-8 holds a lone
    surrogate, which UTF-8 can't encode: it is shown as its escape
    (``\\udcff``), and the answer stays text, not the envelope."""
    health = make(app, HEALTHCHECK_SHOW_DETAILS=True)

    def files() -> CheckResult:
        return CheckResult(
            status="warn",
            error=f"unreadable: {UNDECODABLE}",
            observed_value=UNDECODABLE,
        )

    def broken() -> None:
        raise OSError(f"can't open {UNDECODABLE}")

    health.add_check(files)
    health.add_check(broken, critical=False)
    response = get(app)
    assert (response.status_code, response.mimetype) == (200, "text/plain")
    assert "files: warn" in response.text
    assert "unreadable: /data/report-\\udcff.csv" in response.text
    assert "broken: fail" in response.text
    assert "OSError: can't open /data/report-\\udcff.csv" in response.text
