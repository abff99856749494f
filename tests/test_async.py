"""Async checks and factories: one event loop per app, for the app's life."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from flask import Flask

from flask_healthcheck import HealthCheck, observe
from flask_healthcheck.event_loop import loop_for

from .children import in_child
from .helpers import run, wait_for

SECRET = "Sup3r-s3cret-pw-4711"


def test_a_redis_asyncio_pool_made_at_import_works_on_every_run(
    app: Flask, health: HealthCheck, redis_url: str
) -> None:
    """A client made before any loop runs (at import, as docs/services.md
    advises) binds its pool to the first loop that uses it: on a loop per
    run every other run failed with "Event loop is closed"."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)

    @health.check
    async def cache() -> bool:
        return bool(await client.ping())

    try:
        reports = [run(app, health) for _ in range(20)]
        assert [r.checks[0].error for r in reports] == [None] * 20
        assert {r.status for r in reports} == {"pass"}
    finally:
        # On the loop that made its connections, before that loop closes.
        loop_for(app).run(client.aclose(), None)


def test_async_checks_and_factories_of_an_app_share_one_loop(app: Flask) -> None:
    loops: list[int] = []
    health = HealthCheck(app, services=["session"])

    @health.service("session")
    async def session() -> int:
        loops.append(id(asyncio.get_running_loop()))
        observe(1.5, "ms")  # the check's context reaches the coroutine
        return 1

    @health.check
    async def first(session: int) -> bool:
        loops.append(id(asyncio.get_running_loop()))
        return True

    @health.check
    async def second() -> bool:
        loops.append(id(asyncio.get_running_loop()))
        return True

    reports = [run(app, health) for _ in range(3)]
    assert {r.status for r in reports} == {"pass"}
    assert len(loops) == 3 * 4 and len(set(loops)) == 1
    assert reports[0].checks[0].observed_value == 1.5

    other = Flask("other")
    other_health = HealthCheck(other)
    other_health.add_check(second, name="second")
    run(other, other_health)
    assert len(set(loops)) == 2


def test_an_async_check_that_hangs_is_cancelled_at_its_timeout(
    app: Flask, health: HealthCheck
) -> None:
    ended = threading.Event()

    @health.check(timeout=0.2)
    async def hangs() -> bool:
        try:
            await asyncio.sleep(60)
        finally:
            ended.set()
        return True

    report = run(app, health)
    assert report.status == "fail"
    assert "timed out" in (report.checks[0].error or "")
    assert ended.wait(5), "the coroutine was not cancelled"


def test_an_async_system_exit_fails_the_check_and_the_loop_lives_on(
    app: Flask, health: HealthCheck
) -> None:
    outcome = {"exit": True}

    @health.check
    async def exits() -> bool:
        if outcome["exit"]:
            raise SystemExit(3)
        return True

    loop_thread = None
    for expected in ("fail", "pass"):
        report = run(app, health)
        assert report.status == expected
        thread = loop_for(app).thread
        assert thread is not None and thread.is_alive()
        loop_thread = loop_thread or thread
        assert thread is loop_thread
        outcome["exit"] = False


def test_a_check_that_stops_the_loop_does_not_end_it(
    app: Flask, health: HealthCheck
) -> None:
    @health.check
    async def stops() -> bool:
        asyncio.get_running_loop().stop()
        return True

    for _ in range(3):
        assert run(app, health).status == "pass"
    thread = loop_for(app).thread
    assert thread is not None and thread.is_alive()


def test_the_loop_ends_when_its_app_is_dropped() -> None:
    """The loop holds nothing of the app: dropping the app stops the loop's
    thread and closes the loop."""
    app = Flask("dropped")

    async def answer() -> int:
        return 42

    app_loop = loop_for(app)
    assert app_loop.run(answer(), None) == 42
    thread = app_loop.thread
    assert thread is not None and thread.is_alive()
    del app
    gc.collect()
    wait_for(lambda: not thread.is_alive(), 10, "the loop's thread outlived its app")
    with pytest.raises(RuntimeError, match="closed"):
        app_loop.run(answer(), None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_runs_async_checks_on_a_loop_of_its_own(
    app: Flask, health: HealthCheck
) -> None:
    @health.check
    async def where() -> bool:
        return True

    assert run(app, health).status == "pass"
    parent = loop_for(app).thread
    assert parent is not None

    def work() -> list[Any]:
        report = run(app, health)
        child = loop_for(app).thread
        return [report.status, child is not None and child is not parent]

    assert in_child("os.fork", work, 20) == ["pass", True]
    assert run(app, health).status == "pass"
    assert loop_for(app).thread is parent


def test_exceptions_left_on_the_loop_are_logged_redacted(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing async check whose exception text quotes the database
    password, with a task and a future whose exceptions nobody retrieves:
    asyncio reports those on its logger, password and all, unless the loop
    hands them to the extension's redacted logger."""
    app.config["DATABASE_URL"] = f"postgresql://app:{SECRET}@127.0.0.1/app"
    health = HealthCheck(app)
    message = f"connection to postgresql://app:{SECRET}@127.0.0.1 refused"

    async def fail() -> None:
        raise ConnectionError(message)

    @health.check
    async def database() -> bool:
        loop = asyncio.get_running_loop()
        loop.create_future().set_exception(ConnectionError(message))
        left = loop.create_task(fail())
        await asyncio.sleep(0)
        del left
        await fail()
        return True

    caplog.set_level(logging.DEBUG)  # every logger, every level
    report = run(app, health)
    assert report.status == "fail"
    gc.collect()

    def reported() -> bool:
        text = caplog.text
        return "Task exception was never retrieved" in text and (
            "Future exception was never retrieved" in text
        )

    wait_for(reported, 5, "asyncio's reports did not reach a log")
    records = caplog.records
    assert records
    for record in records:
        handler = caplog.handler
        assert SECRET not in handler.format(record), record.name
    assert {r.name for r in records if "never retrieved" in r.getMessage()} == {
        "flask_healthcheck"
    }


def test_a_coroutine_cancelled_before_it_began_is_closed() -> None:
    """A deadline already passed: the coroutine never runs, and is closed
    rather than left to warn "never awaited" (an error under pytest)."""
    app = Flask("late")
    app_loop = loop_for(app)
    began = threading.Event()

    async def late() -> None:
        began.set()

    for _ in range(20):
        with pytest.raises(TimeoutError):
            app_loop.run(late(), deadline=0.0)
    gc.collect()
    app_loop.close()


def test_a_loop_first_used_in_an_app_context_ends_when_its_app_is_dropped() -> None:
    """A check starts the loop inside the app's context; a loop made there
    kept a copy of that context (in its self-pipe's handle), hence the app,
    hence itself: neither the app nor the loop's thread ever went away."""
    apps: list[weakref.ref[Flask]] = []
    threads: list[threading.Thread] = []
    for index in range(200):
        app = Flask(f"dropped-{index}")

        async def answer() -> int:
            return 42

        with app.app_context():
            assert loop_for(app).run(answer(), None) == 42
        thread = loop_for(app).thread
        assert thread is not None
        apps.append(weakref.ref(app))
        threads.append(thread)
    del app
    gc.collect()
    assert [ref() for ref in apps] == [None] * 200
    wait_for(
        lambda: not any(t.is_alive() for t in threads),
        10,
        "the loops' threads outlived their apps",
    )


def test_an_async_check_that_ignores_its_cancellation_is_not_started_again(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    """Like a hung sync check, a coroutine still running after its timeout
    (it swallows CancelledError, as some clients do) is reported and not
    started again: each probe used to add one more copy to the loop."""
    started: list[int] = []

    @health.check(timeout=0.1)
    async def stubborn() -> bool:
        started.append(1)
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                pass
        return True

    errors = [run(app, health).checks[0].error or "" for _ in range(5)]
    assert "timed out" in errors[0]
    assert all("not started again" in error for error in errors[1:]), errors
    assert len(started) == 1
    release.set()
    wait_for(lambda: run(app, health).status == "pass")


def test_a_check_that_blocks_the_loop_is_not_queued_again(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    """An async check that never awaits (``time.sleep`` in a coroutine)
    blocks the app's loop: the app's other async checks fail at their own
    timeouts, its sync checks pass, and the blocking check is not queued
    behind itself at every probe: it is reported still running, as a hung
    sync check is."""
    calls: list[str] = []

    @health.check(timeout=0.1)
    async def blocks() -> bool:
        calls.append("blocks")
        release.wait(30)
        return True

    @health.check(timeout=0.2)
    async def innocent() -> bool:
        calls.append("innocent")
        return True

    @health.check
    def sync() -> bool:
        return True

    for probe in range(4):
        report = run(app, health)
        statuses = {c.name: (c.status, c.error or "") for c in report.checks}
        assert statuses["sync"] == ("pass", "")
        assert statuses["blocks"][0] == statuses["innocent"][0] == "fail"
        if probe:
            assert "not started again" in statuses["blocks"][1]
    assert calls == ["blocks"]
    # Another app's async checks run on a loop of their own, unhindered.
    other = Flask("other")
    other_health = HealthCheck(other)
    other_health.add_check(innocent, name="innocent", timeout=5)
    assert run(other, other_health).status == "pass"
    release.set()
    wait_for(lambda: run(app, health).status == "pass", 10)
    assert calls.count("blocks") == 2


def test_an_async_factory_is_torn_down_after_its_check_timed_out(
    app: Flask, health: HealthCheck
) -> None:
    """A sync generator factory's teardown runs after a timed-out check;
    an async one's was cancelled before it began (its deadline had
    passed), leaving what it closes open on every slow run."""
    closed = threading.Event()

    @health.service("connection")
    async def connection() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(0.01)  # a close() round trip
        closed.set()

    @health.check(timeout=0.1)
    async def slow(connection: int) -> bool:
        await asyncio.sleep(5)
        return True

    report = run(app, health)
    assert "timed out" in (report.checks[0].error or "")
    assert closed.wait(5), "the async factory was never torn down"


def test_an_async_teardown_that_hangs_is_cancelled_and_the_check_runs_again(
    app: Flask, health: HealthCheck
) -> None:
    """The teardown gets the check's timeout afresh, then is cancelled: one
    that hangs (a close() waiting for a dead server) must not keep its
    check "still running" for good."""
    cancelled = threading.Event()

    @health.service("connection")
    async def connection() -> AsyncIterator[int]:
        yield 1
        try:
            await asyncio.sleep(3600)  # a close() that never returns
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @health.check(timeout=0.1)
    async def quick(connection: int) -> bool:
        return True

    first = run(app, health).checks[0]
    assert first.status == "fail" and "timed out" in (first.error or "")
    assert cancelled.wait(5), "the hung teardown was never cancelled"
    wait_for(
        lambda: "not started again" not in (run(app, health).checks[0].error or ""),
        5,
        "the check stayed 'still running' after its teardown was cancelled",
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_coroutine_runs_has_a_working_loop(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    """A fork while the parent's loop runs a check (its thread, and maybe
    its locks, busy): the child's async checks run on a loop of its own."""
    began = threading.Event()

    @health.check(timeout=30)
    async def busy() -> bool:
        began.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return True

    @health.check
    async def quick() -> bool:
        return True

    def probe() -> None:
        with app.app_context():
            health.run()

    parent = threading.Thread(target=probe)
    parent.start()
    try:
        assert began.wait(10)

        def work() -> list[Any]:
            release.set()  # the child's copy of the check ends at once
            with app.app_context():
                report = health.run()
            return [(c.name, c.status, c.error) for c in report.checks]

        expected = [["busy", "pass", None], ["quick", "pass", None]]
        assert in_child("os.fork", work, 20) == expected
    finally:
        release.set()
        parent.join(10)


class _LibraryExit(BaseException):
    """A library's own BaseException, as gevent's GreenletExit is."""


@pytest.mark.parametrize(
    "escape",
    [
        SystemExit(3),
        KeyboardInterrupt(),
        GeneratorExit(),
        asyncio.CancelledError(),
        _LibraryExit("gave up"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("where", ["check", "factory", "teardown"])
def test_what_an_async_check_factory_or_teardown_raises_fails_it(
    app: Flask, health: HealthCheck, escape: BaseException, where: str
) -> None:
    """Every BaseException fails the check, whichever part of it raises, and
    the app's loop runs the next one as if nothing happened."""
    raising = {"on": True}

    def escape_if(part: str) -> None:
        if raising["on"] and where == part:
            raise type(escape)(*escape.args)

    @health.service("session")
    async def session() -> AsyncIterator[int]:
        escape_if("factory")
        yield 1
        escape_if("teardown")

    @health.check
    async def uses(session: int) -> bool:
        escape_if("check")
        return True

    report = run(app, health)
    assert report.status == "fail"
    assert (report.checks[0].error or "").startswith(type(escape).__name__)
    raising["on"] = False
    assert run(app, health).status == "pass"
