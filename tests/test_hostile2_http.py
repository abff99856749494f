"""Hostile tests over HTTP: the history, the status page, routing errors under
the health URLs, the access-log filter, redaction and draining."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import CheckResult, HealthCheck, ProbeAccessLogFilter
from flask_healthcheck.checks import Status
from flask_healthcheck.history import History

from .helpers import Bounded, bounded

SECRET = "s3cr3t-hunter2"


def strict_json(data: bytes) -> Any:
    """JSON as other languages read it: NaN and Infinity are errors."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data, parse_constant=refuse)


# -- the history -----------------------------------------------------------------


def test_the_history_without_details_names_no_check_and_no_error(
    app: Flask, health: HealthCheck
) -> None:
    def billing_db_at_10_0_0_7() -> bool:
        raise RuntimeError(f"postgres://app:{SECRET}@10.0.0.7/billing")

    health.add_check(billing_db_at_10_0_0_7)
    client = app.test_client()
    assert client.get("/health").status_code == 500
    body = client.get("/health/history").data
    assert b"billing_db" not in body and SECRET.encode() not in body
    assert "checks" not in strict_json(body)


def test_the_history_with_details_keeps_no_error_text(app: Flask) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(lambda: (False, f"token={SECRET}"), name="api")
    client = app.test_client()
    client.get("/health")
    body = client.get("/health/history").data
    assert SECRET.encode() not in body
    assert strict_json(body)["checks"]["api"]["status"] == "fail"


def test_a_hundred_thousand_results_over_200_checks_stay_bounded_and_fast() -> None:
    history = History(max_results=360)
    names = [f"check_{i}" for i in range(200)]
    started = time.monotonic()
    for i in range(100_000):
        status: Status = "fail" if i % 7 == 0 else "pass"
        history.record(CheckResult(name=names[i % 200], status=status, duration=1e-3))
        history.record_overall(status)
    snapshot = history.snapshot(names)
    assert time.monotonic() - started < 2.5
    assert all(len(trend.entries) == 360 for trend in snapshot.checks.values())
    assert snapshot.overall is not None and len(snapshot.overall.entries) == 360


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


def test_details_never_write_nan_or_infinity(app: Flask) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(
        lambda: CheckResult(
            name="x", status="warn", duration=float("nan"), observed_value=float("inf")
        ),
        name="disk",
    )
    client = app.test_client()
    for accept in ("application/json", "application/health+json"):
        strict_json(client.get("/health", headers={"Accept": accept}).data)
    strict_json(client.get("/health/history").data)


# -- routing errors under the health URLs ----------------------------------------


@pytest.mark.parametrize("method", ["BREW", "OPTIONS", "PROPFIND", "X" * 3000])
def test_any_refused_method_gets_the_envelope_405(
    client: FlaskClient, method: str
) -> None:
    response = client.open("/health", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Cache-Control"] == "no-store"
    assert strict_json(response.data)["status"] == "failure"


@pytest.mark.parametrize(
    "path", ["/health/..", "/health/../etc/passwd", "/health/%2e%2e", "/health/a/b"]
)
def test_traversal_under_the_health_url_is_an_envelope_404(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert strict_json(response.data)["status"] == "failure"


def test_a_10_kb_path_is_answered_small(client: FlaskClient) -> None:
    response = client.get("/health/" + "a" * 10_000)
    assert response.status_code == 404
    assert len(response.data) < 500


def test_merged_slashes_redirect_uncached_and_other_paths_are_the_apps(
    client: FlaskClient,
) -> None:
    response = client.get("/health//database")
    assert response.status_code == 308
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Location"].endswith("/health/database")
    response = client.get("/healthz-admin")
    assert response.status_code == 404
    assert "Cache-Control" not in response.headers  # the app's own 404


def test_head_of_an_unknown_check_is_a_bodiless_404(client: FlaskClient) -> None:
    response = client.head("/health/nope")
    assert response.status_code == 404 and response.data == b""


# -- the access-log filter -------------------------------------------------------


def gunicorn_record(method: str, path: str, status: str) -> logging.LogRecord:
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(r)s %(s)s", None, None
    )
    record.args = {"m": method, "U": path, "s": status, "h": "-", "r": "-"}
    return record


def werkzeug_record(line: str, status: str) -> logging.LogRecord:
    return logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s %s', (line, status, "-"), None
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "kept"),
    [
        ("GET", "/health", "200", False),
        ("HEAD", "/health", "200", False),
        ("GET", "/health/database", "200", False),
        ("GET", "/healthz-admin", "200", True),
        ("GET", "/healthcheck", "200", True),
        ("GET", "/admin/health", "200", True),
        ("GET", "/health", "304", True),
        ("GET", "/health", "500", True),
        ("GET", "/health/nope", "404", True),
        ("POST", "/health", "200", True),
        ("get", "/health", "200", True),
        ("GET", "/", "200", True),
    ],
)
def test_the_filter_drops_only_successful_probes(
    method: str, path: str, status: str, kept: bool
) -> None:
    log_filter = ProbeAccessLogFilter(paths=["/health"])
    assert log_filter.filter(gunicorn_record(method, path, status)) is kept
    line = f"{method} {path} HTTP/1.1"
    assert log_filter.filter(werkzeug_record(line, status)) is kept


def test_the_filter_ignores_the_query_but_not_a_lookalike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_filter = ProbeAccessLogFilter(paths=["/health/"])
    assert not log_filter.filter(
        werkzeug_record("GET /health?x=/admin HTTP/1.1", "200")
    )
    assert log_filter.filter(werkzeug_record("GET /admin?/health/ HTTP/1.1", "200"))
    assert log_filter.filter(werkzeug_record("GET /%68ealth-x HTTP/1.1", "200"))
    assert log_filter.filter(werkzeug_record("garbage", "400"))


# -- redaction -----------------------------------------------------------------


def test_credentials_in_the_service_description_are_redacted(app: Flask) -> None:
    app.config.update(
        HEALTHCHECK_SERVICE_ID=f"orders token={SECRET}",
        HEALTHCHECK_DESCRIPTION=f"Orders on postgres://app:{SECRET}@db/orders",
    )
    HealthCheck(app)
    client = app.test_client()
    for accept in ("application/health+json", "text/html"):
        for path in ("/health", "/health/nope"):
            body = client.get(path, headers={"Accept": accept}).text
            assert SECRET not in body, f"{path} as {accept}"


def test_secrets_stay_out_of_the_log_and_every_format(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)

    def database() -> bool:
        raise ConnectionError(f"postgresql://app:{SECRET}@db/x password={SECRET}")

    health.add_check(database)
    client = app.test_client()
    with caplog.at_level(logging.DEBUG, "flask_healthcheck"):
        for accept in ("application/json", "application/health+json", "text/html"):
            assert SECRET not in client.get("/health", headers={"Accept": accept}).text
    assert SECRET not in caplog.text
    assert SECRET not in client.get("/health/history").text


# -- draining during a probe storm -----------------------------------------------


def test_drain_during_a_probe_storm(app: Flask) -> None:
    app.config.update(HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]})
    health = HealthCheck(app)

    def db() -> bool:
        time.sleep(0.002)
        return True

    health.add_check(db, tags=("ready",))
    drained = threading.Event()
    after: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + 0.6

    def storm() -> None:
        client = FlaskClient(app)
        while time.monotonic() < stop:
            for path in ("/readyz", "/livez", "/health"):
                was_drained = drained.is_set()
                code = client.get(path).status_code
                if was_drained:
                    with lock:
                        after[(path, code)] += 1

    workers = [Bounded(storm, f"storm {i}") for i in range(8)]
    time.sleep(0.2)
    bounded(lambda: health.drain(app), 1, "health.drain()")
    drained.set()
    for worker in workers:
        worker.result(2, "a storm thread")
    assert after[("/readyz", 500)] > 0 and after[("/readyz", 200)] == 0
    assert after[("/livez", 500)] == 0 and after[("/health", 500)] == 0
