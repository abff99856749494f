"""The example app works as its README says."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from example_app import create_app
from flask_healthcheck.state import get_state

from .helpers import FAILURE, SUCCESS


@pytest.fixture
def example(tmp_path: Path) -> Flask:
    return create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}"}
    )


def test_clearskies_examples_answer_as_documented(example: Flask) -> None:
    client = example.test_client()
    failing = client.get("/clearskies/cursor-backend/health")
    assert (failing.status_code, failing.data) == (500, FAILURE)
    for url in ("/clearskies/memory-backend/health", "/clearskies/callable/health"):
        response = client.get(url)
        assert (response.status_code, response.data) == (200, SUCCESS)


def shows_details(
    app: Flask, headers: dict[str, str] | None = None, **environ: str
) -> bool:
    response = app.test_client().get(
        "/health", headers=headers or {}, environ_base=environ
    )
    assert response.status_code == 200
    assert response.json is not None
    return bool(response.json["data"])


def test_details_for_the_right_token_only(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}",
            "HEALTH_TOKEN": "s3cret-token",
        }
    )
    assert shows_details(app, {"X-Health-Token": "s3cret-token"})
    assert not shows_details(app, {"X-Health-Token": "s3cret-tokem"})
    assert not shows_details(app, {"X-Health-Token": "s3cr\u00e9t"})
    assert not shows_details(app)


def test_no_token_configured_is_no_details_by_token(example: Flask) -> None:
    assert not shows_details(example, {"X-Health-Token": ""})


def test_a_same_host_proxy_gets_no_details(example: Flask) -> None:
    """Issue 10.7: details went to 127.0.0.1, the address of every client
    behind a same-host nginx."""
    assert not shows_details(example, REMOTE_ADDR="127.0.0.1")
    example.config["DEBUG"] = True
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    assert not shows_details(example, forwarded, REMOTE_ADDR="127.0.0.1")
    assert not shows_details(example, {"X-Real-IP": "1.2.3.4"}, REMOTE_ADDR="::1")


def test_a_spoofed_forwarded_for_fools_no_one(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DEBUG": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}",
            "PROXY_COUNT": 1,
        }
    )
    # The client wrote the first address; nginx appended the real one.
    spoofed = {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"}
    assert not shows_details(app, spoofed, REMOTE_ADDR="127.0.0.1")
    assert isinstance(app.wsgi_app, ProxyFix)
    assert app.wsgi_app.x_for == 1


def test_debug_mode_shows_details_to_this_machine(example: Flask) -> None:
    example.config["DEBUG"] = True
    assert shows_details(example, REMOTE_ADDR="127.0.0.1")
    assert set(
        example.test_client().get("/health").json["data"]["checks"]  # type: ignore[index]
    ) == {"schema_ready", "disk_space"}
    assert not shows_details(example, REMOTE_ADDR="10.1.2.3")


def test_a_missing_table_fails_and_alerts(example: Flask, caplog: Any) -> None:
    engine: sa.Engine = example.extensions["example_engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    with caplog.at_level(logging.WARNING, logger="example_app.alerts"):
        response = example.test_client().get("/health")
        # The alert is a subscriber: it runs on the app's delivery thread.
        assert get_state(example).wait_for_signals(5)
    assert response.status_code == 500
    assert "ALERT example_app: check 'schema_ready' failed" in caplog.text


def test_index_lists_notes(example: Flask) -> None:
    body = example.test_client().get("/").json
    assert body is not None and body["notes"] == []


def test_probe_endpoints(example: Flask) -> None:
    client = example.test_client()
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/livez", environ_base=remote).data == SUCCESS
    assert client.get("/readyz", environ_base=remote).data == SUCCESS
    engine: sa.Engine = example.extensions["example_engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 500
    assert client.get("/readyz/disk_space").status_code == 200


def test_real_postgresql_and_redis_when_configured(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": postgres_url.replace(
                "postgresql://", "postgresql+psycopg://"
            ),
            "REDIS_URL": redis_url,
            "HEALTH_TOKEN": "t",
        }
    )
    response = app.test_client().get("/health", headers={"X-Health-Token": "t"})
    assert response.status_code == 200, response.json
    checks = response.json["data"]["checks"]  # type: ignore[index]
    assert set(checks) == {"redis", "schema_ready", "disk_space"}
    app.extensions["example_engine"].dispose()


def test_starts_while_its_database_is_down_and_is_not_ready(
    refused_port: int, tmp_path: Path, caplog: Any
) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"postgresql+psycopg://app:pw@127.0.0.1:{refused_port}/app",
        }
    )
    assert "The database does not answer" in caplog.text
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 500
    assert "pw" not in caplog.text


def test_redis_down_makes_it_not_ready(running_redis: Any, tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}",
            "REDIS_URL": running_redis.url,
        }
    )
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    running_redis.stop()
    assert client.get("/readyz").status_code == 500
    assert client.get("/livez").status_code == 200
