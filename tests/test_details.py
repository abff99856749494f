"""Details are shown only when allowed, and never carry a secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, Request

from flask_healthcheck import CheckResult, HealthCheck
from flask_healthcheck.redact import config_secrets, describe_exception, redact


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


def test_the_full_exception_goes_to_the_log(app: Flask, caplog: Any) -> None:
    make(app, False)
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        app.test_client().get("/health")
    record = next(r for r in caplog.records if "database" in r.getMessage())
    assert record.exc_info is not None  # traceback in the log, not in the response


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("mysql+pymysql://u:p%40ss@h/d failed", "mysql+pymysql://u:***@h/d failed"),
        ("http://host/path", "http://host/path"),
        ("password=hunter2 host=db", "password=*** host=db"),
        ("dbname=x user=y pwd=abc", "dbname=x user=y pwd=***"),
        ("secret='a b c' next", "secret='***' next"),
        ('{"api_key": "k-123"}', '{"api_key": "***"}'),
        ("?token=abc&x=1", "?token=***&x=1"),
        ("access_token: xyz", "access_token: ***"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
        ("header authorization=Basic dXNlcjpwdw==", "header authorization=***"),
        ("got bearer abc.def", "got bearer ***"),
        (
            "password authentication failed for user",
            "password authentication failed for user",
        ),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_describe_exception_keeps_type_and_cuts_length() -> None:
    assert describe_exception(TimeoutError()) == "TimeoutError"
    long = describe_exception(ValueError("x" * 2000))
    assert long.startswith("ValueError: xxx") and len(long) == 500


def test_config_secrets() -> None:
    secrets = config_secrets(
        {
            "SECRET_KEY": "abcdef",
            "DATABASE_URL": "postgresql://u:p%40ssword@h/d",
            "DEBUG": True,
            "NAME": "public",
            "API_TOKEN": "x",  # too short to blank safely
        }
    )
    assert secrets == {"abcdef", "p%40ssword", "p@ssword"}
