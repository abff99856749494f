"""Details are shown only when allowed, and never carry a secret."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Request

from flask_healthcheck import CheckResult, HealthCheck


def make(app: Flask, show: Any) -> HealthCheck:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = show
    health = HealthCheck(app)
    health.add_check(lambda: True, name="ok")

    @health.check
    def database() -> None:
        raise ConnectionError(
            "could not connect to postgresql://health:hunter22@db:5432/app"
        )

    return health


def test_details_are_hidden_by_default(app: Flask) -> None:
    make(app, False)
    response = app.test_client().get("/health")
    assert response.json == {
        "status": "failure",
        "error": "",
        "data": [],
        "pagination": {},
        "input_errors": {},
    }


def test_details_when_allowed(app: Flask) -> None:
    make(app, True)
    body = app.test_client().get("/health").json
    assert body is not None
    checks = body["data"]["checks"]
    assert list(checks) == ["ok", "database"]
    assert checks["ok"]["status"] == "pass" and checks["ok"]["error"] is None
    assert checks["database"] == {
        "status": "fail",
        "duration_ms": checks["database"]["duration_ms"],
        "error": "ConnectionError: could not connect to postgresql://health:***@db:5432/app",
    }
    assert isinstance(checks["database"]["duration_ms"], float)


def test_details_decided_per_request(app: Flask) -> None:
    def allowed(request: Request) -> bool:
        return request.headers.get("X-Health-Token") == "let-me-see"

    make(app, allowed)
    client = app.test_client()
    assert client.get("/health").json["data"] == []  # type: ignore[index]
    shown = client.get("/health", headers={"X-Health-Token": "let-me-see"})
    assert "checks" in shown.json["data"]  # type: ignore[index]


def test_a_raising_details_predicate_hides_details(app: Flask, caplog: Any) -> None:
    def broken(request: Request) -> bool:
        raise RuntimeError("bug")

    make(app, broken)
    response = app.test_client().get("/health")
    assert response.json["data"] == []  # type: ignore[index]
    assert "HEALTHCHECK_SHOW_DETAILS raised" in caplog.text


def test_the_traceback_goes_to_the_log_redacted(app: Flask, caplog: Any) -> None:
    make(app, False)
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        app.test_client().get("/health")
    record = next(r for r in caplog.records if "database" in r.getMessage())
    # The traceback is in the log, not in the response; formatted and
    # redacted, with the exception object no handler could format again.
    assert record.exc_info is None and record.exc_text is not None
    assert record.exc_text.startswith("Traceback (most recent call last):")
    assert "postgresql://health:***@db:5432/app" in record.exc_text
    assert "hunter22" not in caplog.text


def test_config_secrets_are_blanked_wherever_they_appear(app: Flask) -> None:
    app.config.update(
        SECRET_KEY="s3cr3t-key-value",
        SHOW_DETAILS=True,
        REDIS_URL="redis://:redis-pass-123@cache:6379/0",
    )
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)

    @health.check
    def leaky() -> None:
        raise ValueError("auth failed with redis-pass-123 and s3cr3t-key-value")

    @health.check
    def wrote_its_own() -> CheckResult:
        return CheckResult(status="fail", error="token=abc123def used s3cr3t-key-value")

    body = app.test_client().get("/health").get_data(as_text=True)
    assert "redis-pass-123" not in body
    assert "s3cr3t-key-value" not in body
    assert "abc123def" not in body
