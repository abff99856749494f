"""Warn: a failing non-critical check degrades the report, but it serves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import HealthCheck

from .helpers import SUCCESS


def degraded(app: Flask, **config: Any) -> HealthCheck:
    app.config.update(config)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    health.add_check(lambda: False, name="search", critical=False)
    return health


def test_a_failing_non_critical_check_warns_with_200(app: Flask) -> None:
    degraded(app)
    client = app.test_client()
    response = client.get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)
    document = json.loads(
        client.get("/health", headers={"Accept": "application/health+json"}).data
    )
    assert document["status"] == "warn"
    assert document["checks"]["search"][0]["status"] == "fail"


@pytest.mark.parametrize("accept", ["application/json", "application/health+json"])
def test_warn_status_is_configurable(app: Flask, accept: str) -> None:
    degraded(app, HEALTHCHECK_WARN_STATUS=207)
    response = app.test_client().get("/health", headers={"Accept": accept})
    assert response.status_code == 207


def test_the_html_page_shows_warn(app: Flask) -> None:
    degraded(app, HEALTHCHECK_SHOW_DETAILS=True)
    response = app.test_client().get("/health", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert '<header class="banner warn"' in response.text
    assert "Degraded" in response.text


def test_a_critical_failure_still_fails_next_to_a_warn(app: Flask) -> None:
    health = degraded(app)
    health.add_check(lambda: False, name="queue")
    assert app.test_client().get("/health").status_code == 500


def test_warn_exits_0_from_the_command_line(app: Flask) -> None:
    degraded(app)
    result = app.test_cli_runner().invoke(args=["health"])
    assert result.exit_code == 0
    assert "Health: warn" in result.output
