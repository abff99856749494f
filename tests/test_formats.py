"""Formats by ``Accept``: the clearskies envelope, health+json and the HTML page."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck

from .helpers import FAILURE, SUCCESS

HEALTH_JSON = "application/health+json"
SECRET = "hunter22-very-secret"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def failing(app: Flask, **config: Any) -> HealthCheck:
    """One passing check and one failing with a password in its error.

    Settings are read in ``init_app``, so ``config`` is set before it.
    """
    app.config.update(config)
    app.config["DATABASE_URL"] = f"postgresql://app:{SECRET}@db.internal/app"
    health = HealthCheck(app)

    @health.check(component_type="system")
    def process() -> bool:
        return True

    @health.check(component_type="datastore")
    def database(config: Any) -> bool:
        raise ConnectionError(f"could not connect to {config['DATABASE_URL']}")

    return health


def get(app: Flask, accept: str | None, url: str = "/health") -> Any:
    headers = {} if accept is None else {"Accept": accept}
    return app.test_client().get(url, headers=headers)


# -- negotiation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "mimetype"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/*", "application/json"),
        ("image/png", "application/json"),
        (HEALTH_JSON, HEALTH_JSON),
        ("text/html", "text/html"),
        ("text/*", "text/html"),
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "text/html",
        ),
        ("application/json;q=0.5, application/health+json", HEALTH_JSON),
        ("application/health+json;q=0.5, application/json;q=0.9", "application/json"),
        ("application/health+json;q=0.9, text/html", "text/html"),
        ("text/html;q=0, */*", "application/json"),
        # Malformed: a clean fallback to the envelope, never a 500.
        ("text/html;q=abc", "application/json"),
        ("text/html;q=nan", "application/json"),
        ("text/html;q=1e999", "application/json"),
        (";;;,,,", "application/json"),
        ("\x00\x01", "application/json"),
        ("x" * 10_000, "application/json"),
        (", ".join(["text/csv"] * 2_000), "application/json"),
        ("text/plain", "text/plain"),
    ],
)
def test_the_format_follows_accept(
    app: Flask, health: HealthCheck, accept: str | None, mimetype: str
) -> None:
    response = get(app, accept)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/csv"])
def test_the_envelope_bytes_stay_the_default(app: Flask, accept: str | None) -> None:
    HealthCheck(app, callable=lambda: True)
    response = get(app, accept)
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert response.content_type == "application/json"
    app2 = Flask("two")
    HealthCheck(app2, callable=lambda: False)
    response = get(app2, accept)
    assert (response.status_code, response.data) == (500, FAILURE)


@pytest.mark.parametrize("accept", [None, HEALTH_JSON, "text/html"])
def test_every_format_answers_the_same_status_code(
    app: Flask, accept: str | None
) -> None:
    failing(app, HEALTHCHECK_FAILURE_STATUS=503)
    assert get(app, accept).status_code == 503
    assert get(app, accept, "/health/process").status_code == 200
    assert get(app, accept, "/health/database").status_code == 503


# -- application/health+json ------------------------------------------------------


def test_health_json_without_details(app: Flask) -> None:
    failing(app)
    response = get(app, HEALTH_JSON)
    assert response.status_code == 500
    assert response.content_type == HEALTH_JSON
    document = json.loads(response.data)
    assert list(document) == ["status", "checks"]
    assert document["status"] == "fail"
    assert list(document["checks"]) == ["process", "database"]
    for name, status in (("process", "pass"), ("database", "fail")):
        (item,) = document["checks"][name]
        assert list(item) == ["status", "time"]
        assert item["status"] == status
        assert ISO_UTC.match(item["time"])
    assert SECRET not in response.text


def test_health_json_with_details(app: Flask) -> None:
    failing(app, HEALTHCHECK_SHOW_DETAILS=True)
    document = json.loads(get(app, HEALTH_JSON).data)
    (process,) = document["checks"]["process"]
    (database,) = document["checks"]["database"]
    assert process["componentType"] == "system"
    assert process["observedUnit"] == "ms"
    assert isinstance(process["observedValue"], float)
    assert "output" not in process
    assert database["status"] == "fail"
    assert database["componentType"] == "datastore"
    assert database["output"] == (
        "ConnectionError: could not connect to postgresql://app:***@db.internal/app"
    )
    assert SECRET not in json.dumps(document)


def test_health_json_time_is_when_the_check_started(
    app: Flask, health: HealthCheck
) -> None:
    health.add_check(lambda: True, name="up")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    document = json.loads(get(app, HEALTH_JSON).data)
    (item,) = document["checks"]["up"]
    moment = datetime.strptime(item["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert moment.replace(tzinfo=timezone.utc) >= before


def test_health_json_uses_a_checks_own_observed_value(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(
        lambda: CheckResult(status="warn", observed_value=91, observed_unit="%"),
        name="disk",
    )
    health.add_check(lambda: CheckResult(observed_value=3), name="queue")
    health.add_check(
        lambda: CheckResult(observed_value=math.nan, observed_unit="s"), name="odd"
    )
    health.add_check(lambda: CheckResult(observed_value=object()), name="opaque")
    response = get(app, HEALTH_JSON)
    assert response.status_code == 200
    document = json.loads(response.data)
    assert document["status"] == "warn"
    assert document["checks"]["disk"] == [
        {
            "status": "warn",
            "time": document["checks"]["disk"][0]["time"],
            "observedValue": 91,
            "observedUnit": "%",
        }
    ]
    assert "observedUnit" not in document["checks"]["queue"][0]
    assert document["checks"]["odd"][0]["observedValue"] == "nan"
    assert document["checks"]["opaque"][0]["observedValue"].startswith("<object")


def test_health_json_names_the_service_when_configured(app: Flask) -> None:
    app.config.update(
        HEALTHCHECK_SERVICE_ID="orders-api",
        HEALTHCHECK_VERSION="1",
        HEALTHCHECK_RELEASE_ID="1.4.2",
        HEALTHCHECK_DESCRIPTION="Order taking",
    )
    HealthCheck(app)
    document = json.loads(get(app, HEALTH_JSON).data)
    assert document == {
        "status": "pass",
        "version": "1",
        "releaseId": "1.4.2",
        "serviceId": "orders-api",
        "description": "Order taking",
        "checks": {},
    }


def test_health_json_for_refused_requests(app: Flask) -> None:
    failing(app)
    response = get(app, HEALTH_JSON, "/health/nope")
    assert (response.status_code, response.content_type) == (404, HEALTH_JSON)
    assert json.loads(response.data) == {
        "status": "fail",
        "output": "unknown check 'nope'",
    }
    response = get(app, HEALTH_JSON, "/health?exclude=nope")
    assert response.status_code == 400
    assert json.loads(response.data)["output"] == "unknown check 'nope'"


def test_a_configuration_error_is_a_failing_check_in_every_format(
    app: Flask,
) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    HealthCheck(app, services=["databse"])
    document = json.loads(get(app, HEALTH_JSON).data)
    (item,) = document["checks"]["configuration"]
    assert item["output"].startswith("ConfigurationError: check 'databse' needs")
    page = get(app, "text/html")
    assert page.status_code == 500
    assert "ConfigurationError: check &#39;databse&#39; needs" in page.text


# -- details and redaction are the same everywhere ---------------------------------


@pytest.mark.parametrize("accept", [None, HEALTH_JSON, "text/html"])
def test_no_format_shows_errors_without_details(app: Flask, accept: str | None) -> None:
    failing(app)
    text = get(app, accept).text
    assert "ConnectionError" not in text
    assert "db.internal" not in text
    assert SECRET not in text


@pytest.mark.parametrize("accept", [None, HEALTH_JSON, "text/html"])
def test_every_format_redacts_errors_with_details(
    app: Flask, accept: str | None
) -> None:
    failing(app, HEALTHCHECK_SHOW_DETAILS=True)
    text = get(app, accept).text
    assert "postgresql://app:***@db.internal/app" in text
    assert SECRET not in text


@pytest.mark.parametrize("accept", [None, HEALTH_JSON, "text/html"])
def test_show_details_callable_decides_for_every_format(
    app: Flask, accept: str | None
) -> None:
    failing(
        app,
        HEALTHCHECK_SHOW_DETAILS=lambda request: (
            request.headers.get("X-Token") == "ops"
        ),
    )
    client = app.test_client()
    headers = {} if accept is None else {"Accept": accept}
    hidden = client.get("/health", headers=headers).text
    shown = client.get("/health", headers={**headers, "X-Token": "ops"}).text
    assert "ConnectionError" not in hidden
    assert "ConnectionError" in shown
