"""Gunicorn entry for ``scale.py --only refresh``: an app's own route, with
or without the background refresh.

    gunicorn -k gthread -w 1 --threads 4 'refresh_target:create_app(checks="cpu")'

``checks``: "none" (no extension at all), "trivial" (10 checks returning
True) or "cpu" (10 checks burning 50 ms of CPU each), refreshed every
second. ``GET /refreshes`` says how many refreshes the worker ran.
"""

from __future__ import annotations

import os
import time

from flask import Flask

from flask_healthcheck import HealthCheck
from flask_healthcheck.signals import health_checked


def create_app(checks: str = "none") -> Flask:
    app = Flask(__name__)
    runs = [0]

    @app.get("/")
    def index() -> dict[str, object]:
        return {"id": 1, "name": "widget", "tags": ["a", "b"]}

    @app.get("/refreshes")
    def refreshes() -> str:
        return str(runs[0])

    if checks == "none":
        return app
    app.config.update(HEALTHCHECK_INTERVAL=1.0)
    if "SCALE_RUN_DIR" in os.environ:
        app.config["HEALTHCHECK_RUN_DIR"] = os.environ["SCALE_RUN_DIR"]
    health = HealthCheck(app)
    for i in range(10):
        health.add_check(trivial if checks == "trivial" else burn, name=f"check{i}")

    def count(sender: Flask, **kwargs: object) -> None:
        runs[0] += 1

    health_checked.connect(count, app, weak=False)
    return app


def trivial() -> bool:
    return True


def burn() -> bool:
    """50 ms of this thread's CPU time."""
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass
    return True
