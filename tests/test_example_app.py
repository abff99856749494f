"""The example app works as its README says."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from example_app import create_app

from .helpers import FAILURE, SUCCESS


@pytest.fixture
def example(tmp_path: Path) -> Flask:
    return create_app(
        {"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'example.db'}"}
    )


def test_seed_examples_answer_like_clearskies(example: Flask) -> None:
    client = example.test_client()
    failing = client.get("/seed/cursor-backend/health")
    assert (failing.status_code, failing.data) == (500, FAILURE)
    for url in ("/seed/memory-backend/health", "/seed/callable/health"):
        response = client.get(url)
        assert (response.status_code, response.data) == (200, SUCCESS)


def test_health_passes_with_details_for_localhost_only(example: Flask) -> None:
    client = example.test_client()
    local = client.get("/health", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200
    assert set(local.json["data"]["checks"]) == {"schema_ready", "disk_space"}  # type: ignore[index]
    remote = client.get("/health", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert (remote.status_code, remote.data) == (200, SUCCESS)


def test_a_missing_table_fails_and_alerts(example: Flask, caplog: Any) -> None:
    engine: sa.Engine = example.extensions["example_engine"]
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE notes"))
    with caplog.at_level(logging.WARNING, logger="example_app.alerts"):
        response = example.test_client().get("/health")
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
        }
    )
    response = app.test_client().get(
        "/health", environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert response.status_code == 200, response.json
    checks = response.json["data"]["checks"]  # type: ignore[index]
    assert set(checks) == {"redis", "schema_ready", "disk_space"}
    app.extensions["example_engine"].dispose()
