"""Nothing crosses a fork: results, threads, locks, the host lock and pooled
connections, whether the fork runs Python's at-fork handlers (``os.fork()``,
as gunicorn forks) or not (libc's ``fork()`` called directly, as uWSGI forks
in C).

The child does its work and reports through a pipe; the parent waits with a
deadline and kills a child that hangs, so a deadlocked child fails the test
instead of hanging it.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask, current_app
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

import flask_healthcheck.app_secrets
from flask_healthcheck import ConfigurationError, HealthCheck, hostlock
from flask_healthcheck.contrib.sqlalchemy import engine_for
from flask_healthcheck.hostlock import HostLock
from flask_healthcheck.state import get_state

from .children import in_child
from .helpers import wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

#: Set in the fresh interpreter that runs one libc-fork test.
ISOLATED = "FLASK_HEALTHCHECK_FORK_TEST_ISOLATED"

#: How a child is made: Python's os.fork(), or libc's, which runs no
#: at-fork handler (uWSGI's way). A libc fork runs none of Python's own
#: at-fork handlers either: a child made while another thread holds a lock
#: of Python's (logging's, an import lock) hangs whatever the extension does.
#: The suite's process has many threads of other tests, so each libc-fork
#: test runs alone in a fresh interpreter (:func:`test_under_a_libc_fork`).
FORKS = ["os.fork", "libc fork"] if os.environ.get(ISOLATED) else ["os.fork"]


@pytest.fixture(params=FORKS)
def how(request: pytest.FixtureRequest) -> str:
    """Each way of forking in turn (see :func:`tests.children.in_child`)."""
    param: str = request.param
    return param


def test_a_child_runs_its_own_checks_on_its_own_threads(
    app: Flask, how: str, tmp_path: Path
) -> None:
    """uWSGI: the child's pool counted the parent's idle thread, so its
    checks waited for a thread that does not exist there; and a result the
    parent had cached was the child's answer."""
    app.config.update(
        HEALTHCHECK_CACHE_TTL=60, HEALTHCHECK_TIMEOUT=2, HEALTHCHECK_SHOW_DETAILS=True
    )
    health = HealthCheck(app)
    switch = tmp_path / "switch"
    switch.write_text("down")
    ran: list[int] = []

    @health.check
    def database() -> bool:
        ran.append(os.getpid())
        return switch.read_text() == "up"

    client = app.test_client()
    assert client.get("/health").status_code == 500  # cached for a minute
    assert get_state(app).runner.pool.thread_count == 1  # idle now
    switch.write_text("up")

    def child() -> Any:
        response = FlaskClient(app).get("/health")
        return [response.status_code, ran.count(os.getpid())]

    assert in_child(how, child) == [200, 1]
    # The parent goes on with its own cache.
    assert client.get("/health").status_code == 500


def test_a_child_never_uses_the_parents_locks(app: Flask, how: str) -> None:
    """A lock held by a parent's thread at the fork is held forever in the
    child: the child makes its own."""
    app.config.update(HEALTHCHECK_TIMEOUT=2)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    state = get_state(app)
    with state.runner._lock, state._lock, state.signals._lock:
        # Held while the child is made, as by a thread of the parent's.
        def child() -> Any:
            return FlaskClient(app).get("/health").status_code

        assert in_child(how, child) == 200


def test_a_child_neither_holds_nor_frees_the_parents_host_lock(
    tmp_path: Path, how: str
) -> None:
    """uWSGI: the master kept the host lock, and the workers, which never
    ran the at-fork handler, counted it as theirs."""
    app = Flask(__name__)
    # No refresh: nothing opens the lock file in the child before it looks.
    app.config.update(HEALTHCHECK_RUN_DIR=str(tmp_path))
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    state = get_state(app)
    assert state.host_lock is not None
    # Held by the parent apart from its refresh (which a process that forks
    # stops, letting go of the lock): another app of the same name's, say.
    keeper = HostLock(str(tmp_path), Path(state.host_lock.path).stem)
    assert keeper.acquire()
    inherited = hostlock._holdings[keeper.path].fd

    def child() -> Any:
        FlaskClient(app).get("/health")  # the first entry
        assert state.host_lock is not None
        try:
            os.fstat(inherited)
            closed = False
        except OSError:
            closed = True
        return [closed, keeper.held, state.host_lock.acquire(), keeper.acquire()]

    try:
        assert in_child(how, child) == [True, False, False, False]
        assert keeper.held  # the child closed its copy without unlocking
    finally:
        keeper.release()


def test_a_refresh_started_in_the_parent_is_the_parents(
    tmp_path: Path, how: str
) -> None:
    app = Flask(__name__)
    app.config.update(HEALTHCHECK_INTERVAL=60, HEALTHCHECK_RUN_DIR=None)
    health = HealthCheck(app)
    ran = threading.Event()

    @health.check
    def database() -> bool:
        ran.set()
        return True

    health.start(app)
    # Forked once the parent's refresh waits for its next run, as a master
    # forks after loading the app: a fork that runs no at-fork handler while
    # another thread is making a thread deadlocks the child in CPython
    # itself, whatever the app does.
    assert ran.wait(5)
    time.sleep(0.1)
    try:

        def child() -> Any:
            refresher = get_state(app).refresher
            before = refresher.running
            FlaskClient(app).get("/health")  # starts the child's own
            return [before, refresher.running]

        assert in_child(how, child) == [False, True]
    finally:
        health.stop(app)


def test_after_fork_functions_run_once_per_app_before_the_first_request(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthCheck()
    apps = [Flask("one"), Flask("two")]
    for app in apps:
        health.init_app(app)
    events: list[str] = []

    @health.after_fork
    def new_connections(app: Flask, config: Any) -> None:
        assert current_app._get_current_object() is app  # type: ignore[attr-defined]
        assert config is app.config
        events.append(f"after_fork {app.name}")

    @health.after_fork(app=apps[0])
    def broken() -> None:
        raise RuntimeError("only logged")

    @apps[0].get("/")
    def index() -> str:
        events.append("view")
        return "ok"

    def child() -> Any:
        client = FlaskClient(apps[0])
        client.get("/")
        client.get("/")
        return events

    with caplog.at_level(logging.ERROR, "flask_healthcheck"):
        assert in_child(how, child) == [
            "after_fork one",
            "after_fork two",
            "view",
            "view",
        ]
    assert events == []  # never in the parent


def test_an_after_fork_function_gets_app_and_config_only(health: HealthCheck) -> None:
    with pytest.raises(ConfigurationError, match="'database'"):
        health.after_fork(lambda database: None)
    health.after_fork(lambda app, config, retries=3: None)  # a default is fine


def test_a_process_that_never_forked_runs_no_after_fork_function(
    app: Flask, health: HealthCheck
) -> None:
    calls: list[str] = []
    health.after_fork(lambda: calls.append("called"))
    app.test_client().get("/health")
    assert calls == []


def backend_pid(engine: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar())


def test_the_child_gets_new_connections_and_the_parent_keeps_its_own(
    how: str, postgres_url: str
) -> None:
    """Issue 16: under ``--preload`` every worker used the connection the
    master's check had pooled, and read other workers' rows."""
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=url, HEALTHCHECK_SERVICES=["sqlalchemy"])
    db = SQLAlchemy(app)
    health = HealthCheck(app)
    other = Flask("other")  # no Flask-SQLAlchemy: the ready-made service's engine
    other.config.update(DATABASE_URL=url, HEALTHCHECK_SERVICES=["sqlalchemy"])
    health.init_app(other)
    engines = []
    for each in (app, other):
        assert each.test_client().get("/health").status_code == 200
        with each.app_context():
            engines.append(db.engine if each is app else engine_for(each, each.config))
    parents = [backend_pid(engine) for engine in engines]

    def child() -> Any:
        assert FlaskClient(app).get("/health").status_code == 200
        mine = [backend_pid(engine) for engine in engines]
        gc.collect()  # a connection collected here must not end the parent's
        return mine

    try:
        children = in_child(how, child)
        assert not set(children) & set(parents), (
            "the child used the parent's connection"
        )
        assert [backend_pid(engine) for engine in engines] == parents
    finally:
        for engine in engines:  # closed here, not by the garbage collector later
            engine.dispose()


def test_the_apps_redis_client_forgets_the_parents_connections(
    how: str, redis_url: str
) -> None:
    app = Flask(__name__)
    client = redis.Redis.from_url(redis_url)
    app.extensions["redis"] = client  # as Flask-Redis keeps it
    HealthCheck(app, services=["redis"])
    assert app.test_client().get("/health").status_code == 200
    assert client.ping()
    inherited = list(client.connection_pool._available_connections)
    assert inherited

    def child() -> Any:
        with app.app_context():  # the first entry
            pool = client.connection_pool
            return [
                pool.pid == os.getpid(),
                any(c in inherited for c in pool._available_connections),
            ]

    assert in_child(how, child) == [True, False]
    assert client.ping()


def test_forks_are_noticed_once_however_many_threads_enter(app: Flask) -> None:
    """The first entries of a child may come from several threads at once:
    one resets, the others wait for it."""
    health = HealthCheck(app)
    calls: list[int] = []
    release = threading.Event()

    @health.after_fork
    def slow() -> None:
        calls.append(os.getpid())
        release.wait(0.2)

    def child() -> Any:
        threads = [
            threading.Thread(target=FlaskClient(app).get, args=("/health",))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        return len(calls)

    assert in_child("libc fork", child) == 1


#: The tests above that take ``how``.
LIBC_FORK_TESTS = [
    "test_a_child_runs_its_own_checks_on_its_own_threads",
    "test_a_child_never_uses_the_parents_locks",
    "test_a_child_neither_holds_nor_frees_the_parents_host_lock",
    "test_a_refresh_started_in_the_parent_is_the_parents",
    "test_after_fork_functions_run_once_per_app_before_the_first_request",
    "test_the_child_gets_new_connections_and_the_parent_keeps_its_own",
    "test_the_apps_redis_client_forgets_the_parents_connections",
]


@pytest.mark.skipif(bool(os.environ.get(ISOLATED)), reason="the isolated run itself")
@pytest.mark.parametrize("name", LIBC_FORK_TESTS)
def test_under_a_libc_fork(name: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::{name}[libc fork]",
        ],
        env={**os.environ, ISOLATED: "1"},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


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
        with flask_healthcheck.app_secrets._lock:
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
