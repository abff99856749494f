"""Under a real ``gunicorn -k gevent`` (monkey-patched), over loopback.

A check blocked in C (here SQLite waiting for a lock another process
holds) must not block gevent's hub: the checks run on real OS threads and
a probe waits for them cooperatively, so ``/livez`` answers while a
readiness check is stuck, and ``/readyz`` answers at its check's timeout.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import time
from pathlib import Path

import pytest

from .gunicorn import StartGunicorn
from .helpers import FAILURE, Bounded, live_app, probes_app, sqlite_check, wait_for
from .server_fixtures import skip_or_fail_missing
from .servers import BinaryNotFoundError

pytestmark = pytest.mark.server

#: The readiness check's timeout, seconds.
TIMEOUT = 1.0
#: How long SQLite waits for the lock, in C, before it gives up (seconds).
BUSY_SECONDS = 12.0
#: A bound no healthy answer comes near, however loaded the machine; far
#: below :data:`BUSY_SECONDS`, the time a blocked hub would take.
PROMPT = 5.0

GEVENT_APP = (
    probes_app(TIMEOUT)
    + f"""
import os
import sqlite3

from flask_healthcheck.signals import check_failed


@health.check(tags=["ready"])
{sqlite_check(BUSY_SECONDS)}


@check_failed.connect_via(app)
def store_alert(sender, result):
    # An alert kept in the same database: blocked in C too, on delivery.
    with sqlite3.connect(os.environ["DATABASE"], timeout={BUSY_SECONDS}) as db:
        db.execute("INSERT INTO t VALUES (1)")


@app.get("/monkey")
def monkey():
    import gevent.monkey

    return str(gevent.monkey.is_module_patched("threading"))
"""
)


def require_gevent() -> None:
    """Skip the test if gevent is not installed, or fail it under ``CI``."""
    if importlib.util.find_spec("gevent") is None:
        skip_or_fail_missing(
            BinaryNotFoundError("gevent", "pip install 'flask-healthchecks[test]'")
        )


@pytest.mark.parametrize("preload", [False, True], ids=["", "preload"])
def test_a_check_blocked_in_c_never_blocks_the_hub(
    gunicorn_server: StartGunicorn, tmp_path: Path, preload: bool
) -> None:
    """Issue 16: ``/readyz`` held 31 s and ``/livez`` 31 s (until gunicorn
    killed the worker) while a readiness check waited for a SQLite lock."""
    require_gevent()
    database = tmp_path / "app.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    # With --preload the app is imported before gevent patches the worker.
    server = gunicorn_server(
        GEVENT_APP,
        worker_class="gevent",
        preload=preload,
        env={"DATABASE": str(database)},
    )
    patched = server.get("/monkey", PROMPT)
    assert patched is not None and patched.text == "True", server.tail()
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # what a long migration does
        ready = Bounded(lambda: server.get("/readyz", BUSY_SECONDS + 5), "GET /readyz")
        time.sleep(0.3)  # the readiness check is now blocked in C
        live = server.get("/livez", PROMPT)
        answer = ready.result(BUSY_SECONDS + 10, "GET /readyz")
        # Its check_failed subscriber is now blocked in C on delivery.
        time.sleep(0.3)
        live_again = server.get("/livez", PROMPT)
    finally:
        holder.rollback()
        holder.close()
    print(  # the figures of issue 16
        f"\ngevent, readiness blocked in C (timeout {TIMEOUT:g} s):"
        f" /livez {live.seconds if live else None!r} s,"
        f" /readyz {answer.seconds if answer else None!r} s; /livez while a"
        f" subscriber blocks {live_again.seconds if live_again else None!r} s"
    )
    assert live is not None, f"/livez unanswered after {PROMPT:g} s\n{server.tail()}"
    assert live.status == 200, live.text
    assert answer is not None, server.tail()
    assert (answer.status, answer.body) == (500, FAILURE)
    assert answer.seconds < PROMPT + TIMEOUT, answer
    assert live_again is not None, "/livez unanswered while a subscriber blocks"
    assert live_again.status == 200, live_again.text
    # The lock is free again: the check passes once its stuck run has ended.
    wait_for(
        lambda: getattr(server.get("/readyz", PROMPT), "status", None) == 200,
        BUSY_SECONDS,
        "/readyz never passed again after the lock was released",
    )


REFRESH_APP = (
    live_app(TIMEOUT=TIMEOUT, INTERVAL=0.3, RUN_DIR=None)
    + f"""
import sqlite3

from flask_healthcheck.signals import health_checked


@health.check
{sqlite_check(BUSY_SECONDS)}

@health_checked.connect_via(app)
def count_runs(sender, report):
    with open(os.environ["RUNS"], "a") as f:
        f.write(report.status + "\\n")
"""
)


def test_the_refresher_goes_on_while_a_check_is_blocked_in_c(
    gunicorn_server: StartGunicorn, tmp_path: Path
) -> None:
    require_gevent()
    database = tmp_path / "app.sqlite"
    runs = tmp_path / "runs.txt"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        server = gunicorn_server(
            REFRESH_APP,
            worker_class="gevent",
            env={"DATABASE": str(database), "RUNS": str(runs)},
        )
        live = server.get("/livez", PROMPT)  # the first request starts the refresh
        assert live is not None and live.status == 200, server.tail()
        wait_for(
            lambda: runs.exists() and runs.read_text().count("fail") >= 3,
            PROMPT + 3 * TIMEOUT,
            f"the refresh stopped while a check was blocked\n{server.tail()}",
        )
        live = server.get("/livez", PROMPT)
        assert live is not None and live.status == 200, server.tail()
    finally:
        holder.rollback()
        holder.close()
