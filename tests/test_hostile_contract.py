"""DESIGN.md rules the engine's neighbours don't follow (found while testing
the engine; not run-engine defects)."""

from __future__ import annotations

from flask import Flask

from flask_healthcheck import HealthCheck

from .helpers import FAILURE, bounded


def get_status(app: Flask, path: str = "/health") -> int:
    return bounded(lambda: app.test_client().get(path).status_code, 2, f"GET {path}")


def test_the_seed_callable_returning_none_fails(app: Flask) -> None:
    HealthCheck(app, callable=lambda: None)
    response = bounded(lambda: app.test_client().get("/health"), 2, "GET /health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_a_false_tuple_fails_with_its_message(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(lambda: (False, "replica lag 40 s"), name="replica")
    response = bounded(lambda: app.test_client().get("/health"), 2, "GET /health")
    assert response.status_code == 500
    checks = response.json["data"]["checks"]  # type: ignore[index]
    assert "replica lag 40 s" in checks["replica"]["error"]


def test_the_history_url_answers(app: Flask) -> None:
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    assert get_status(app) == 200
    assert get_status(app, "/health/history") == 200
