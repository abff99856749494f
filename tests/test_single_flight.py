"""Single flight and the cache work per check, whatever URL a probe uses."""

from __future__ import annotations

import functools
import threading
import time

from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import (
    HealthCheck,
    HealthReport,
)
from flask_healthcheck.signals import health_changed

from .helpers import Bounded, Counter, bounded, wait_for

#: Checks registered next to the database, for ``?exclude=`` to vary over.
OTHERS = [f"other{number}" for number in range(8)]


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


def test_health_run_from_many_threads_joins_one_run(app: Flask) -> None:
    health = HealthCheck(app)
    runs = [0]
    lock = threading.Lock()

    def database() -> bool:
        with lock:
            runs[0] += 1
        time.sleep(0.3)
        return True

    health.add_check(database)
    barrier = threading.Barrier(20)

    def run() -> str:
        barrier.wait(5)
        with app.app_context():
            return health.run().status

    callers = [Bounded(run) for _ in range(20)]
    assert [c.result(5, "health.run()") for c in callers] == ["pass"] * 20
    assert runs[0] == 1


def test_health_run_inside_a_check_never_wedges_the_app(app: Flask) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=0.3)
    health = HealthCheck(app)

    @health.check
    def recursive() -> bool:
        return health.run().healthy

    @health.check
    def database() -> bool:
        return True

    started = time.monotonic()
    first = Bounded(lambda: FlaskClient(app).get("/health").status_code, "probe")
    # health.run() in a check answers from the other checks, without a run
    # of its own (issue 17): it neither waits for itself nor starts a storm.
    assert first.result(2, "the probe") == 200
    assert time.monotonic() - started < 1.0
    # The check left running is reported, not started again; its siblings go on.
    body = bounded(
        lambda: FlaskClient(app).get("/health/database").status_code, 1, "probe"
    )
    assert body == 200
