"""Draining: readiness endpoints fail with the reason "draining", nothing else does."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import HealthCheck

from .helpers import FAILURE, SUCCESS, Bounded, bounded


@pytest.fixture
def runs(app: Flask, health: HealthCheck) -> list[str]:
    """Kubernetes' layout: a liveness check and a readiness check."""
    health.add_endpoint("/livez", tags=["live"])
    health.add_endpoint("/readyz", tags=["ready"])
    seen: list[str] = []
    # A check returning None passes.
    health.add_check(lambda: seen.append("alive"), name="alive", tags=["live"])
    health.add_check(lambda: seen.append("database"), name="database", tags=["ready"])
    return seen


def test_draining_fails_readiness_and_nothing_else(
    app: Flask, health: HealthCheck, client: FlaskClient, runs: list[str]
) -> None:
    assert not health.is_draining(app)
    health.drain(app)
    assert health.is_draining(app)
    ready = client.get("/readyz")
    assert (ready.status_code, ready.data) == (500, FAILURE)
    assert ready.headers["Cache-Control"] == "no-store"
    assert client.get("/readyz/database").status_code == 500
    live = client.get("/livez")
    assert (live.status_code, live.data) == (200, SUCCESS)
    assert client.get("/health").status_code == 200  # the main URL: every check
    assert runs == ["alive", "alive", "database"]


def test_a_draining_readiness_probe_runs_no_check(
    app: Flask, health: HealthCheck, client: FlaskClient, runs: list[str]
) -> None:
    health.drain(app)
    client.get("/readyz")
    assert runs == []


def test_the_reason_is_draining() -> None:
    app = Flask(__name__)
    app.config.update(
        HEALTHCHECK_ENDPOINTS={"/readyz": ["ready"]}, HEALTHCHECK_SHOW_DETAILS=True
    )
    health = HealthCheck(app)
    health.drain(app)
    answer = app.test_client().get(
        "/readyz", headers={"Accept": "application/health+json"}
    )
    document = json.loads(answer.data)
    assert (answer.status_code, document["status"]) == (500, "fail")
    assert list(document["checks"]) == ["draining"]
    (draining,) = document["checks"]["draining"]
    assert draining["output"].startswith("draining")


def test_undrain_runs_the_checks_again(
    app: Flask, health: HealthCheck, client: FlaskClient, runs: list[str]
) -> None:
    health.drain(app)
    health.undrain(app)
    assert not health.is_draining(app)
    assert client.get("/readyz").data == SUCCESS
    assert runs == ["database"]


def test_draining_is_per_app() -> None:
    first, second = Flask("first"), Flask("second")
    health = HealthCheck()
    for app in (first, second):
        app.config["HEALTHCHECK_ENDPOINTS"] = {"/readyz": ["ready"]}
        health.init_app(app)
    health.drain(first)
    assert first.test_client().get("/readyz").status_code == 500
    assert second.test_client().get("/readyz").status_code == 200


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
