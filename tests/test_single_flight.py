"""Single flight and the cache work per check, whatever URL a probe uses."""

from __future__ import annotations

import functools
import threading
import time

from flask import Flask

from flask_healthcheck import HealthCheck, HealthReport
from flask_healthcheck.signals import health_changed

from .helpers import Bounded, wait_for

#: Checks registered next to the database, for ``?exclude=`` to vary over.
OTHERS = [f"other{number}" for number in range(8)]


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


def exclusions(number: int) -> str:
    """A query string leaving out another set of the other checks each time."""
    left_out = [name for bit, name in enumerate(OTHERS) if number >> bit & 1]
    return "&".join(f"exclude={name}" for name in left_out)


def test_a_storm_of_exclude_queries_runs_the_database_once(app: Flask) -> None:
    """Issue 8, defect 8: with the cache per selection, 200 probes varying
    ``?exclude=`` ran the database 200 times and sent 200 ``health_changed``."""
    app.config["HEALTHCHECK_CACHE_TTL"] = 5
    health = HealthCheck(app)
    runs = Counter()

    def database() -> bool:
        runs.add()
        return False  # down: every selection that has it fails

    health.add_check(database)
    for name in OTHERS:
        health.add_check(lambda: True, name=name)
    changes: list[tuple[str | None, str]] = []

    def on_changed(sender: Flask, report: HealthReport, previous: str | None) -> None:
        changes.append((previous, report.status))

    with health_changed.connected_to(on_changed, app):
        client = app.test_client()
        for number in range(1, 201):
            response = client.get(f"/health?{exclusions(number)}")
            assert response.status_code == 500
        wait_for(lambda: len(changes) >= 1)
        time.sleep(0.2)  # anything late would be in by now
    assert runs.value == 1, "the database ran once per URL, not once per TTL"
    assert changes == [(None, "fail")]


def test_every_endpoint_joins_one_run_of_a_check(app: Flask) -> None:
    """Any probe of a check in flight joins that run: the main URL, a tagged
    endpoint, the per-check URL and ``?exclude=``."""
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/readyz": ["ready"]}
    health = HealthCheck(app)
    runs = Counter()

    def database() -> bool:
        runs.add()
        time.sleep(0.3)
        return True

    health.add_check(database, tags=["ready"])
    health.add_check(lambda: True, name="cache")
    urls = ["/health", "/readyz", "/health/database", "/health?exclude=cache"]
    barrier = threading.Barrier(len(urls))

    def probe(url: str) -> int:
        barrier.wait(5)
        return app.test_client().get(url).status_code

    probes = [Bounded(functools.partial(probe, url)) for url in urls]
    assert [p.result(5, "a probe") for p in probes] == [200] * len(urls)
    assert runs.value == 1
