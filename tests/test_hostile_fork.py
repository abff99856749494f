"""Hostile tests of ``os.fork()`` in a running app.

The child does its work and reports through a pipe; the parent waits with a
deadline and kills a child that hangs, so a deadlocked child fails the test
instead of hanging it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import flask_healthcheck.redact
from flask_healthcheck import HealthCheck
from flask_healthcheck.state import get_state

from .children import in_child
from .helpers import wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def probe_in_child(app: Flask, paths: list[str]) -> list[list[Any]]:
    client = FlaskClient(app)
    answers = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        answers.append(
            [response.status_code, response.get_json(), time.perf_counter() - start]
        )
    return answers


def test_a_forked_child_serves_its_own_results_and_the_parent_refresher_restarts(
    app: Flask, tmp_path: Any
) -> None:
    app.config.update(
        HEALTHCHECK_INTERVAL=10, HEALTHCHECK_TIMEOUT=0.5, HEALTHCHECK_SHOW_DETAILS=True
    )
    # A served app: requests start the refresh of apps without TESTING.
    app.config.update(TESTING=False, HEALTHCHECK_RUN_DIR=None)
    health = HealthCheck(app)
    switch = tmp_path / "switch"
    switch.write_text("up")
    health.add_check(lambda: switch.read_text() == "up", name="database")
    refresher = get_state(app).refresher
    client = FlaskClient(app)
    assert client.get("/health").status_code == 200  # starts the refresher
    assert refresher.running
    switch.write_text("down")  # the parent's latest "pass" is 20 s fresh

    def child() -> Any:
        answers = probe_in_child(app, ["/health", "/health"])
        return {"answers": answers, "refresher": get_state(app).refresher.running}

    result = in_child("os.fork", child, 5)
    assert [a[0] for a in result["answers"]] == [500, 500], result
    assert result["refresher"], "the child's first request did not start it"
    # The parent paused its refresher at the fork; its next request restarts it.
    assert not refresher.running
    switch.write_text("up")
    assert client.get("/health").status_code == 200
    wait_for(lambda: refresher.running, 2)


def test_a_fork_while_another_thread_redacts_leaves_a_working_child(
    app: Flask,
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=0.3, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    calls: list[int] = []

    @health.check
    def database() -> bool:
        calls.append(1)
        return len(calls) > 1  # fails once, with a message to redact

    holding, done = threading.Event(), threading.Event()

    def redacting_thread() -> None:
        # What the refresher thread does for a moment when a check fails.
        with flask_healthcheck.redact._lock:
            holding.set()
            done.wait(5)

    threading.Thread(target=redacting_thread, daemon=True).start()
    assert holding.wait(2)
    try:
        answers = in_child(
            "os.fork", lambda: probe_in_child(app, ["/health", "/health"]), 2
        )
    finally:
        done.set()
    (first, first_body, _), (second, second_body, _) = answers
    assert first == 500
    assert first_body["data"]["checks"]["database"]["error"] == "check returned False"
    assert second == 200, second_body
