"""The checks of a run share their bookkeeping (issue 20), but not their
context: each still gets a fresh ``g``, the app's teardown and its own
deadline, and every result a run reports is recorded before it returns."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
import time
from typing import Any

import pytest
from flask import Flask, g
from flask.signals import appcontext_tearing_down

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, time_left
from flask_healthcheck.signals import check_failed, health_changed
from flask_healthcheck.state import get_state

from .helpers import bounded, run, wait_for


@pytest.fixture(params=[True, False], ids=["threads", "inline"])
def threads(request: pytest.FixtureRequest, app: Flask) -> bool:
    threads: bool = request.param
    app.config["HEALTHCHECK_THREADS"] = threads
    return threads


@pytest.fixture
def health(request: pytest.FixtureRequest, app: Flask) -> HealthCheck:
    """The extension, made once ``threads`` (if the test asks for it) has
    set ``HEALTHCHECK_THREADS``: it is read in ``init_app``."""
    if "threads" in request.fixturenames:
        request.getfixturevalue("threads")
    return HealthCheck(app)


def test_the_apps_teardown_runs_after_each_check_of_a_run(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    order: list[str] = []

    @app.teardown_appcontext
    def teardown(error: BaseException | None) -> None:
        order.append("teardown")

    def checker(i: int) -> Any:
        def check() -> bool:
            order.append(f"check{i}")
            return True

        return check

    for i in range(5):
        health.add_check(checker(i), name=f"c{i}")
    order.clear()
    report = run(app, health)
    assert report.status == "pass"
    checks = [entry for entry in order if entry != "teardown"]
    assert sorted(checks) == [f"check{i}" for i in range(5)]
    # Each check followed by a teardown, before the next check.
    assert order[1::2] == ["teardown"] * 5


def test_a_receiver_of_appcontext_tearing_down_hears_each_check(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    """Flask's teardown is skipped only when it has nothing to do: a
    receiver of its signal, and none of ``teardown_appcontext``, still
    hears every check, with the check's own ``g``."""
    heard: list[str | None] = []

    def receiver(sender: Flask, exc: BaseException | None = None) -> None:
        heard.append(g.get("mark"))

    def checker(i: int) -> Any:
        def check() -> bool:
            g.mark = f"c{i}"
            return True

        return check

    for i in range(5):
        health.add_check(checker(i), name=f"c{i}")
    with appcontext_tearing_down.connected_to(receiver, app):
        run(app, health)
    # The run's own app context (made by ``run``) is heard too, without a mark.
    assert sorted(m for m in heard if m is not None) == [f"c{i}" for i in range(5)]


def test_a_teardown_connected_by_a_check_runs_after_the_next(app: Flask) -> None:
    """Whether the teardown has something to do is asked after every check."""
    app.config["HEALTHCHECK_THREADS"] = False
    health = HealthCheck(app)
    heard: list[str | None] = []

    def receiver(sender: Flask, exc: BaseException | None = None) -> None:
        heard.append(g.get("mark"))

    def connects() -> bool:
        g.mark = "connects"
        appcontext_tearing_down.connect(receiver, app, weak=False)
        return True

    def after() -> bool:
        g.mark = "after"
        return True

    health.add_check(connects)
    health.add_check(after)
    try:
        run(app, health)
    finally:
        appcontext_tearing_down.disconnect(receiver, app)
    assert [m for m in heard if m is not None] == ["connects", "after"]


@pytest.mark.parametrize("threads", [True, False], ids=["threads", "inline"])
def test_an_apps_own_do_teardown_appcontext_runs_after_each_check(
    threads: bool,
) -> None:
    """An app class that overrides ``do_teardown_appcontext`` has it called
    for every check, teardown functions or not."""
    torn_down: list[str | None] = []

    class OwnTeardown(Flask):
        def do_teardown_appcontext(self, exc: Any = None) -> None:
            torn_down.append(g.get("mark"))
            super().do_teardown_appcontext(exc)

    app = OwnTeardown(__name__)
    app.config.update(TESTING=True, HEALTHCHECK_THREADS=threads)
    health = HealthCheck(app)

    def checker(i: int) -> Any:
        def check() -> bool:
            g.mark = f"c{i}"
            return True

        return check

    for i in range(3):
        health.add_check(checker(i), name=f"c{i}")
    try:
        run(app, health)
    finally:
        get_state(app).refresher.stop(timeout=5)
    assert sorted(m for m in torn_down if m is not None) == ["c0", "c1", "c2"]


def test_a_do_teardown_appcontext_patched_onto_flask_runs_after_each_check(
    app: Flask, health: HealthCheck, threads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracing agent that replaces ``Flask.do_teardown_appcontext`` with a
    plain function of its own (wrapped with ``functools.wraps``) has it
    called for every check, as Flask itself would."""
    torn_down: list[str | None] = []
    original = Flask.do_teardown_appcontext

    @functools.wraps(original)
    def traced(self: Flask, exc: Any = None) -> None:
        torn_down.append(g.get("mark"))
        original(self, exc)

    monkeypatch.setattr(Flask, "do_teardown_appcontext", traced)

    def checker(i: int) -> Any:
        def check() -> bool:
            g.mark = f"c{i}"
            return True

        return check

    for i in range(3):
        health.add_check(checker(i), name=f"c{i}")
    run(app, health)
    assert sorted(m for m in torn_down if m is not None) == ["c0", "c1", "c2"]


def test_g_is_not_shared_by_the_checks_of_a_run(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    seen: list[object] = []

    def check() -> bool:
        seen.append(getattr(g, "mark", None))
        g.mark = len(seen)
        return True

    for i in range(10):
        health.add_check(check, name=f"c{i}")
    run(app, health)
    run(app, health)
    assert seen == [None] * 20


def test_a_check_without_parameters_has_its_own_deadline(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    left: dict[str, float | None] = {}

    def checker(name: str) -> Any:
        def check() -> bool:
            left[name] = time_left()
            return True

        return check

    health.add_check(checker("short"), name="short", timeout=1)
    health.add_check(checker("long"), name="long", timeout=30)
    run(app, health)
    short, long = left["short"], left["long"]
    assert short is not None and 0 < short <= 1
    assert long is not None and 1 < long <= 30
    # Outside a check, there is no deadline.
    assert time_left() is None


def test_a_hung_check_times_out_and_the_others_of_its_run_report(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    for i in range(5):
        health.add_check(lambda: True, name=f"before{i}", timeout=5)
    health.add_check(lambda: release.wait(10), name="hung", timeout=0.3)
    for i in range(5):
        health.add_check(lambda: True, name=f"after{i}", timeout=5)
    report = bounded(lambda: run(app, health), 8, "the run")
    results = {result.name: result for result in report.checks}
    assert results.pop("hung").error == "timed out after 0.3 s"
    assert {result.status for result in results.values()} == {"pass"}
    history = get_state(app).history.snapshot(list(results) + ["hung"])
    assert {
        name: trend.count for name, trend in history.checks.items()
    } == dict.fromkeys([*results, "hung"], 1)


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt()])
def test_a_check_raising_systemexit_fails_alone(
    app: Flask, health: HealthCheck, threads: bool, raised: BaseException
) -> None:
    def exits() -> bool:
        raise raised

    health.add_check(lambda: True, name="first")
    health.add_check(exits, name="exits")
    health.add_check(lambda: True, name="last")
    for _ in range(2):  # the worker (or the request) survives it
        report = run(app, health)
        statuses = {result.name: result.status for result in report.checks}
        assert statuses == {"first": "pass", "exits": "fail", "last": "pass"}
    assert type(raised).__name__ in (report.checks[1].error or "")


def test_a_run_that_joins_returns_once_the_result_is_recorded(
    app: Flask, health: HealthCheck, threads: bool, release: threading.Event
) -> None:
    started = threading.Event()
    failed: list[str] = []

    def slow() -> bool:
        started.set()
        release.wait(5)
        return False

    health.add_check(slow, name="slow")
    with check_failed.connected_to(
        lambda sender, result: failed.append(result.name), app
    ):
        first = threading.Thread(target=run, args=(app, health))
        first.start()
        try:
            assert started.wait(5)
            joined: list[HealthReport] = []
            second = threading.Thread(target=lambda: joined.append(run(app, health)))
            second.start()
            # The second run waits for the first's check (single flight).
            wait_for(lambda: _waiting(app), 5)
            release.set()
            second.join(5)
            # Recorded, and its signal delivered, before the joiner returned,
            # whichever of the two runs recorded it.
            assert [result.status for result in joined[0].checks] == ["fail"]
            trend = get_state(app).history.snapshot(["slow"]).checks["slow"]
            assert trend.count == 1
            assert failed == ["slow"]
        finally:
            release.set()
            first.join(5)
    assert get_state(app).history.snapshot(["slow"]).checks["slow"].count == 1


def _waiting(app: Flask) -> bool:
    slot = get_state(app).runner._slots["slow"]
    execution = slot.running
    return execution is not None and execution.joined is not None


def test_the_overall_status_covers_checks_outside_the_run(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    results = {"a": CheckResult(status="fail"), "b": CheckResult(status="pass")}
    for name in results:
        health.add_check(lambda name=name: results[name], name=name, tags=[name])
    health.add_check(lambda: CheckResult(status="fail"), name="minor", critical=False)
    changes: list[tuple[str | None, str, list[str]]] = []

    def changed(sender: Flask, report: HealthReport, previous: str | None) -> None:
        changes.append((previous, report.status, [r.name for r in report.checks]))

    with health_changed.connected_to(changed, app), app.app_context():
        health.run()
        # Only "b", which passes: "a" still fails the app.
        health.run(tags=["b"])
        results["a"] = CheckResult(status="pass")
        # Only "a", which passes now: "minor" (not critical) makes it warn.
        health.run(tags=["a"])
    assert changes == [
        (None, "fail", ["a", "b", "minor"]),
        ("fail", "warn", ["a", "b", "minor"]),
    ]


def test_each_result_enters_the_history_at_the_time_it_was_had(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    # Recorded together when the run ends, yet each at its own time.
    health.add_check(lambda: True, name="quick")
    health.add_check(lambda: time.sleep(0.3), name="slow")
    run(app, health)
    history = get_state(app).history.snapshot(["quick", "slow"])
    (quick,) = history.checks["quick"].columns.times
    (slow,) = history.checks["slow"].columns.times
    assert slow - quick >= 0.25


def test_an_async_check_without_parameters_has_its_deadline(
    app: Flask, health: HealthCheck, threads: bool
) -> None:
    left: list[float | None] = []

    async def check() -> bool:
        await asyncio.sleep(0)
        left.append(time_left())
        return True

    health.add_check(check, name="async", timeout=2)
    health.add_check(lambda: True, name="sync", timeout=30)
    assert run(app, health).status == "pass"
    assert left and left[0] is not None and 0 < left[0] <= 2


class _Abandoned(Exception):
    """What a request timeout raises in the thread that waits."""


def test_a_run_abandoned_while_it_waits_still_records_and_alerts(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    # The request is given up (a signal-driven request timeout here; a
    # gevent.Timeout or a killed greenlet alike) before its check ends: the
    # result the check then has is still recorded and alerted, with no
    # other run coming to record it.
    started = threading.Event()

    def slow() -> bool:
        started.set()
        release.wait(5)
        return False

    def abandon(signum: int, frame: object) -> None:
        raise _Abandoned

    health.add_check(slow, name="slow", timeout=10)
    failed: list[str] = []
    previous = signal.signal(signal.SIGALRM, abandon)
    try:
        with check_failed.connected_to(
            lambda sender, result: failed.append(result.name), app
        ):
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(_Abandoned):
                run(app, health)
            assert started.is_set()
            release.set()
            wait_for(lambda: failed == ["slow"], 5)
        trend = get_state(app).history.snapshot(["slow"]).checks["slow"]
        assert trend.count == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        release.set()


def test_run_inline_a_failure_is_alerted_while_a_later_check_hangs(
    app: Flask, release: threading.Event
) -> None:
    # Inline, a check's timeout is reported, not enforced: a run with a
    # hung check lasts as long as it hangs, and the failure before it was
    # alerted only then (never, for a check hung for good).
    app.config["HEALTHCHECK_THREADS"] = False
    health = HealthCheck(app)
    failed: list[str] = []
    health.add_check(lambda: False, name="fails")
    health.add_check(lambda: release.wait(10), name="hangs", timeout=1)
    with check_failed.connected_to(
        lambda sender, result: failed.append(result.name), app
    ):
        runner = threading.Thread(target=run, args=(app, health))
        runner.start()
        try:
            wait_for(lambda: failed == ["fails"], 5)
        finally:
            release.set()
            runner.join(10)
