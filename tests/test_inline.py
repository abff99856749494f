"""Checks run inline: ``HEALTHCHECK_THREADS = False``, or where threads
can't run (uWSGI without Python threads).

Inline, checks execute on the request thread one after another; a timeout
is reported, not enforced; single flight still applies.
"""

from __future__ import annotations

import gc
import logging
import re
import subprocess
import sys
import threading
import time
import types
import weakref
from collections.abc import Iterator

import pytest
from flask import Flask, current_app, g

import flask_healthcheck.scheduler
from flask_healthcheck import ConfigurationError, HealthCheck
from flask_healthcheck.state import get_state

from .helpers import Bounded, hung_database_app
from .uwsgi import StartUWSGI

#: A timeout no check here comes near, unless it is meant to.
TIMEOUT = 5.0


@pytest.fixture
def inline_app(app: Flask) -> Flask:
    app.config.update(
        HEALTHCHECK_THREADS=False,
        HEALTHCHECK_TIMEOUT=TIMEOUT,
        HEALTHCHECK_SHOW_DETAILS=True,
    )
    return app


def test_checks_run_on_the_request_thread_one_after_another(inline_app: Flask) -> None:
    health = HealthCheck(inline_app)
    spans: dict[str, tuple[int, float, float]] = {}

    def timed(name: str) -> None:
        start = time.monotonic()
        time.sleep(0.05)
        spans[name] = (threading.get_ident(), start, time.monotonic())

    health.add_check(lambda: timed("first"), name="first")
    health.add_check(lambda: timed("second"), name="second")
    response = inline_app.test_client().get("/health")
    assert response.status_code == 200
    assert {ident for ident, _, _ in spans.values()} == {threading.get_ident()}
    assert spans["first"][2] <= spans["second"][1]  # no overlap, in order
    assert get_state(inline_app).runner.pool.thread_count == 0


def test_an_overrun_is_reported_not_enforced(inline_app: Flask) -> None:
    health = HealthCheck(inline_app)
    finished = threading.Event()

    @health.check(timeout=0.05)
    def slow() -> bool:
        time.sleep(0.2)
        finished.set()
        return True

    @health.check
    def quick() -> bool:
        return True

    response = inline_app.test_client().get("/health")
    assert finished.is_set()  # the request waited for it: nothing stops it
    assert response.status_code == 500
    checks = response.get_json()["data"]["checks"]
    assert re.fullmatch(
        r"took \d+\.\d s, over its timeout of 0\.05 s", checks["slow"]["error"]
    ), checks["slow"]
    # Each check's time counts from its own start, not the run's.
    assert checks["quick"]["status"] == "pass"


def test_a_check_in_flight_is_joined_not_run_twice(
    inline_app: Flask, release: threading.Event
) -> None:
    health = HealthCheck(inline_app)
    runs = []

    @health.check
    def database() -> bool:
        runs.append(threading.get_ident())
        return release.wait(TIMEOUT)

    def probe() -> int:
        return inline_app.test_client().get("/health").status_code

    first = Bounded(probe, "first probe")
    deadline = time.monotonic() + TIMEOUT
    while not runs and time.monotonic() < deadline:
        time.sleep(0.01)
    second = Bounded(probe, "second probe")
    time.sleep(0.1)  # the second probe is now waiting for the first's run
    release.set()
    assert first.result(TIMEOUT, "the first probe") == 200
    assert second.result(TIMEOUT, "the second probe") == 200
    assert len(runs) == 1


def test_a_check_gets_its_own_app_context_and_teardown(inline_app: Flask) -> None:
    """Inside a request (``health.run()`` from a view), the check's ``g``
    and teardown are its own, and the request's context is untouched."""
    health = HealthCheck(inline_app)
    torn_down = []
    inline_app.teardown_appcontext(lambda error: torn_down.append(g.get("mine")))

    @health.check
    def uses_g() -> bool:
        assert g.get("request_value") is None
        g.mine = "check"
        return current_app.name == inline_app.name

    @health.check
    def exits() -> None:
        raise SystemExit(3)

    @inline_app.get("/self-test")
    def self_test() -> str:
        g.request_value = "request"
        report = health.run()
        statuses = ",".join(r.status for r in report.checks)
        return f"{statuses} {g.request_value} {current_app.name}"

    response = inline_app.test_client().get("/self-test")
    assert response.text == f"pass,fail request {inline_app.name}"
    assert "check" in torn_down


def test_a_check_run_from_inside_a_check_gets_an_app_context_of_its_own(
    inline_app: Flask,
) -> None:
    """Inline, the checks of a request thread share one app context (a
    fresh ``g`` each); a check that a check's own health run starts (one
    never run yet runs once) finds it in use and gets one of its own: each
    keeps its ``g``, and each gets its teardown."""
    health = HealthCheck(inline_app)
    torn_down: list[str] = []

    @inline_app.teardown_appcontext
    def teardown(error: BaseException | None) -> None:
        if "mine" in g:  # not the request's own context
            torn_down.append(g.mine)

    seen: list[dict[str, str]] = []

    @health.check
    def outer() -> bool:
        g.mine = "outer"
        report = health.run()  # from a check: inner, never run, runs once
        seen.append({r.name: r.status for r in report.checks})
        return bool(g.mine == "outer")

    @health.check
    def inner() -> bool:
        assert g.get("mine") is None
        g.mine = "inner"
        return current_app.name == inline_app.name

    response = inline_app.test_client().get("/health/outer")
    assert response.status_code == 200, response.json
    assert seen == [{"inner": "pass"}]
    assert torn_down == ["inner", "outer"]
    # And the next probe runs both in the thread's context again.
    assert inline_app.test_client().get("/health").status_code == 200
    assert torn_down[2:] == ["outer", "inner"]


def test_a_dropped_app_whose_checks_ran_on_this_thread_is_released() -> None:
    """The app context kept for inline checks lives on the request thread
    (here the test's own) as long as the app does, never longer."""

    def probed() -> weakref.ref[Flask]:
        app = Flask("dropped_inline")
        app.config["HEALTHCHECK_THREADS"] = False
        health = HealthCheck(app)
        health.add_check(lambda: True, name="up")
        assert app.test_client().get("/health").status_code == 200
        with app.app_context():
            assert health.run().healthy
        return weakref.ref(app)

    ref = probed()
    gc.collect()
    assert ref() is None


#: Under gevent, inline checks of greenlets that take turns on one thread.
GEVENT_INLINE = """
from gevent import monkey; monkey.patch_all()
import gevent
from flask import Flask, g
from flask_healthcheck import HealthCheck

app = Flask("gevent_inline")
app.config.update(HEALTHCHECK_THREADS=False, HEALTHCHECK_SHOW_DETAILS=True)
health = HealthCheck(app)

@health.check
def slow():
    assert "mine" not in g
    g.mine = "slow"
    gevent.sleep(0.05)  # another greenlet's checks run meanwhile
    return g.mine == "slow"

@health.check
def quick():
    assert "mine" not in g
    g.mine = "quick"
    return True

def probe(number):
    # Odd ones run slow (or join its run), even ones quick, while slow waits.
    response = app.test_client().get("/health/slow" if number % 2 else "/health/quick")
    checks = response.json["data"]["checks"]
    return response.status_code, sorted((n, c["status"]) for n, c in checks.items())

jobs = [gevent.spawn(probe, number) for number in range(6)]
gevent.joinall(jobs, timeout=20)
for job in jobs:
    print(job.value)
"""


def test_under_gevent_greenlets_taking_turns_keep_their_own_contexts() -> None:
    """Greenlets share their thread's kept app context: one whose check
    runs while another's is suspended in it gets an app context of its own
    (entering the kept one twice would raise), and ``g`` stays each's own."""
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_INLINE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    slow = "(200, [('slow', 'pass')])"
    quick = "(200, [('quick', 'pass')])"
    assert done.stdout.split("\n")[:6] == [quick, slow] * 3, done.stdout


def test_threads_must_be_true_or_false(app: Flask) -> None:
    app.config["HEALTHCHECK_THREADS"] = "no"
    with pytest.raises(ConfigurationError, match="HEALTHCHECK_THREADS"):
        HealthCheck(app)


@pytest.fixture
def uwsgi_without_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a uWSGI older than 2.0.27 started without ``--enable-threads``
    puts in ``sys.modules`` (``has_threads`` is 0; the real one is 1)."""
    module = types.ModuleType("uwsgi")
    module.has_threads = 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uwsgi", module)
    monkeypatch.setattr(flask_healthcheck.scheduler, "_threads_logged", False)
    yield


def test_without_uwsgi_threads_checks_run_inline_with_one_error(
    app: Flask, uwsgi_without_threads: None, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT)
    health = HealthCheck(app)
    threads = []
    health.add_check(lambda: threads.append(threading.get_ident()), name="database")
    with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
        for _ in range(3):
            assert app.test_client().get("/health").status_code == 200
    assert set(threads) == {threading.get_ident()}
    errors = [r for r in caplog.records if "--enable-threads" in r.getMessage()]
    assert len(errors) == 1, errors
    assert "HEALTHCHECK_THREADS = False" in errors[0].getMessage()
    assert get_state(app).runner.scheduler.inline


UWSGI_APP = hung_database_app(0.5, wait="30")


@pytest.mark.parametrize(
    "flags", [[], ["--enable-threads"]], ids=["default", "threads"]
)
def test_real_uwsgi_runs_checks_on_threads(
    uwsgi_server: StartUWSGI, flags: list[str]
) -> None:
    """uWSGI 2.0.27 and later run Python threads without --enable-threads:
    no ERROR there, and a hung check is cut off at its timeout."""
    server = uwsgi_server(UWSGI_APP, processes=1, args=flags)
    for path, status in [("/readyz", 500), ("/livez", 200), ("/readyz", 500)]:
        answer = server.get(path, 10)
        assert answer is not None, (path, server.text())
        assert answer.status == status, path
        assert answer.seconds < 5, (path, server.text())
    text = server.text()
    assert "python threads support enabled" in text
    assert "HEALTHCHECK_THREADS" not in text  # the extension's ERROR


def test_a_check_that_asks_for_a_run_gets_the_checks_queued_after_it(
    inline_app: Flask,
) -> None:
    """Run inline, a check queued after the one that asks for a run can't
    be waited for (it would run after the asker returns): the run asked for
    runs it then, once, and the outer run reports that result."""
    health = HealthCheck(inline_app)
    calls: list[str] = []
    seen: list[str] = []

    def outer() -> bool:
        report = health.run()
        seen.extend(f"{r.name}={r.status}" for r in report.checks)
        return report.status == "pass"

    def other() -> bool:
        calls.append("other")
        return True

    health.add_check(outer)
    health.add_check(other)
    with inline_app.app_context():
        report = health.run()
    assert report.status == "pass", [(r.name, r.error) for r in report.checks]
    assert seen == ["other=pass"]
    assert calls == ["other"]
