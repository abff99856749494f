"""The clearskies behaviour, byte for byte (recorded from clearskies 1.22.31)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask

from flask_healthcheck import HealthCheck
from flask_healthcheck.state import get_state

from .helpers import FAILURE, SUCCESS


def make(app: Flask, **options: Any) -> Flask:
    HealthCheck(app, **options)
    return app


def test_neither_option_validates_and_succeeds(app: Flask) -> None:
    response = make(app).test_client().get("/health")
    assert response.status_code == 200
    assert response.data == SUCCESS
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"


def test_services_that_always_build_pass(app: Flask) -> None:
    response = make(app, services=["memory_backend"]).test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)


def test_cursor_backend_without_a_database_fails(app: Flask) -> None:
    response = make(app, services=["cursor_backend"]).test_client().get("/health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_cursor_backend_with_sqlite_passes(app: Flask, tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "app.db").close()  # the app made its database
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'app.db'}"
    response = make(app, services=["cursor_backend"]).test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)


def test_cursor_backend_with_unreachable_sqlite_fails(
    app: Flask, tmp_path: Path
) -> None:
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    response = make(app, services=["cursor_backend"]).test_client().get("/health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_callable_true_and_false(app: Flask) -> None:
    state = {"ok": True}
    client = make(app, callable=lambda: state["ok"]).test_client()
    assert client.get("/health").data == SUCCESS
    state["ok"] = False
    response = client.get("/health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_callable_that_raises_fails(app: Flask) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    response = make(app, callable=broken).test_client().get("/health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_callable_gets_services_injected_by_name(app: Flask) -> None:
    seen: list[Any] = []

    def check(memory_backend: dict[str, Any], app: Flask, config: Any) -> bool:
        seen.append((memory_backend, app, config))
        return True

    HealthCheck(app, callable=check)
    assert app.test_client().get("/health").data == SUCCESS
    assert seen == [({}, app, app.config)]
    assert get_state(app).shared.checks == {}  # the callable option is config


def test_both_options_need_both_to_pass(app: Flask) -> None:
    client = make(app, services=["cursor_backend"], callable=lambda: True).test_client()
    assert client.get("/health").status_code == 500
    app2 = Flask("two")
    client2 = make(
        app2, services=["memory_backend"], callable=lambda: False
    ).test_client()
    assert client2.get("/health").status_code == 500
    app3 = Flask("three")
    client3 = make(
        app3, services=["memory_backend"], callable=lambda: True
    ).test_client()
    assert client3.get("/health").data == SUCCESS


def test_options_from_config(app: Flask) -> None:
    app.config.update(
        HEALTHCHECK_SERVICES=["memory_backend"],
        HEALTHCHECK_CALLABLE="tests.test_clearskies:always_false",
        HEALTHCHECK_URL="/status",
    )
    client = make(app).test_client()
    assert client.get("/health").status_code == 404
    assert client.get("/status").data == FAILURE


def always_false() -> bool:
    return False


def test_service_outage_after_success_is_seen(app: Flask, tmp_path: Path) -> None:
    """clearskies 1.x caches a good build forever; we build on every run."""
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    app.config["DATABASE_URL"] = f"sqlite:///{db}?mode=rw"
    health = HealthCheck(app)
    available = {"up": True}

    @health.service("database")
    def database() -> str:
        if not available["up"]:
            raise ConnectionError("database went away")
        return "connection"

    @health.check
    def uses_database(database: str) -> bool:
        return database == "connection"

    client = app.test_client()
    assert client.get("/health").status_code == 200
    available["up"] = False
    assert client.get("/health").status_code == 500
    available["up"] = True
    assert client.get("/health").status_code == 200


def test_only_get_and_head(client: Any) -> None:
    assert client.head("/health").status_code == 200
    for method in ("post", "put", "patch", "delete", "options"):
        assert getattr(client, method)("/health").status_code == 405
    assert client.get("/health/").status_code == 404
    assert client.get("/other").status_code == 404


def test_failure_status_is_configurable(app: Flask) -> None:
    app.config["HEALTHCHECK_FAILURE_STATUS"] = 503
    response = make(app, callable=lambda: False).test_client().get("/health")
    assert (response.status_code, response.data) == (503, FAILURE)
