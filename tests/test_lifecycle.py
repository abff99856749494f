"""Test suites leak nothing: a dropped app releases what the extension made
for it, and a ``TESTING`` app runs no refresher unless it is started."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator

from flask import Flask

from flask_healthcheck import HealthCheck, HealthReport
from flask_healthcheck.signals import check_failed, health_checked
from flask_healthcheck.state import get_state
from flask_healthcheck.testing import record_signals

from .helpers import wait_for

#: The name every app of the leak test shares a prefix of.
PREFIX = "lifecycle-app"


def _ours() -> list[str]:
    """The threads the extension made for this module's apps."""
    return [t.name for t in threading.enumerate() if PREFIX in t.name]


def _app_factory(number: int, *, kind: str) -> Flask:
    """An app as a suite's factory makes it: the refresh configured (as in
    the Kubernetes manifest), a service, a check that fails, a subscriber.

    :param kind: ``"testing"`` (``TESTING``, refresh configured but not
        started), ``"started"`` (``TESTING``, ``health.start()``) or
        ``"served"`` (not ``TESTING``: its first request starts the refresh).
    """
    app = Flask(f"{PREFIX}-{kind}-{number}")
    app.config.update(
        TESTING=kind != "served",
        HEALTHCHECK_INTERVAL=0.2,
        HEALTHCHECK_RUN_DIR=None,
        HEALTHCHECK_TIMEOUT=2,
    )
    health = HealthCheck(app)

    @health.service("database")
    def database() -> Iterator[object]:
        yield object()

    def down(database: object) -> bool:
        raise ConnectionError("connection refused")

    health.add_check(down, name="down")
    health.add_check(lambda database: True, name="up")
    if kind == "started":
        health.start(app)
    return app


def test_dropped_apps_release_their_threads_and_objects() -> None:
    """Issue 17: each app that answered one probe kept ~2 daemon threads and
    itself alive for 60 s (100 apps: 207-257 threads, all alive), and the
    refresher of each for ever."""
    gc.collect()
    baseline = threading.active_count()
    refs: list[weakref.ref[Flask]] = []
    seen: list[HealthReport] = []

    def subscriber(sender: Flask, report: HealthReport) -> None:
        seen.append(report)

    kinds = ["testing"] * 150 + ["started"] * 25 + ["served"] * 25
    for number, kind in enumerate(kinds):
        app = _app_factory(number, kind=kind)
        # Connected for the app's life, as an exporter would be.
        health_checked.connect(subscriber, app)
        assert app.test_client().get("/health").status_code == 500
        assert get_state(app).wait_for_signals(5)
        refs.append(weakref.ref(app))
        del app
    assert seen
    busy = len(_ours())
    assert busy  # pool, delivery and refresh threads (some already left)

    started = time.monotonic()
    while _ours() or any(ref() is not None for ref in refs):
        alive = sum(ref() is not None for ref in refs)
        assert time.monotonic() - started < 30, (
            f"still alive after 30 s: {alive} apps, threads {_ours()[:5]}..."
        )
        time.sleep(0.05)
        gc.collect()
    # Other tests' idle threads may leave meanwhile, never more come.
    assert threading.active_count() <= baseline
    print(
        f"{len(kinds)} apps: {busy} threads after their probes; all released"
        f" {time.monotonic() - started:.2f} s after they were dropped"
    )


def test_a_testing_app_starts_no_refresher_on_requests() -> None:
    """Issue 17: with HEALTHCHECK_INTERVAL in the base config, every test
    app's refresher ran for ever (200 apps: 400 threads, ~200 runs/s)."""
    app = Flask(__name__)
    app.config.update(TESTING=True, HEALTHCHECK_INTERVAL=0.05)
    health = HealthCheck(app)
    runs: list[float] = []
    health.add_check(lambda: runs.append(time.monotonic()), name="counted")
    app.add_url_rule("/", "index", lambda: "page")
    client = app.test_client()
    assert client.get("/").text == "page"
    assert client.get("/health").status_code == 200
    refresher = get_state(app).refresher
    time.sleep(0.3)  # six intervals: nothing runs by itself
    assert not refresher.running
    assert len(runs) == 1
    health.start(app)  # explicitly, it does
    try:
        wait_for(lambda: len(runs) >= 3, 5, "the started refresher did not run")
        assert refresher.running
    finally:
        health.stop(app)
    assert not refresher.running


def test_record_signals_after_the_delivery_thread_is_gone(app: Flask) -> None:
    """The testing helpers still work once an idle delivery thread has
    exited (a new one starts with the next signal)."""
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    client = app.test_client()
    with record_signals(app) as recorded:
        client.get("/health")
    get_state(app).signals.close()  # what dropping the app does
    wait_for(lambda: not get_state(app).signals._thread, 5, "thread still idle")
    with record_signals(app) as recorded:
        client.get("/health")
    assert [r.name for r in recorded.failed] == ["database"]
    pages: list[str] = []
    with check_failed.connected_to(lambda sender, result: pages.append("p"), app):
        client.get("/health")
        assert health.wait_for_signals(app)
    assert pages == ["p"]
