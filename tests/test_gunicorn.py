"""Under a real gunicorn (gthread), over loopback: what a deployment sees.

Each test starts its own server (see ``tests/gunicorn.py``) and stays
under about ten seconds; a request that gets no answer in time counts as
unanswered and fails the test, it never hangs it.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import pytest

from .gunicorn import GunicornServer, StartGunicorn
from .helpers import FAILURE, Bounded, hung_database_app
from .processes import Answer

pytestmark = pytest.mark.server

#: The checks' timeout in these apps, seconds.
TIMEOUT = 0.3
#: What a probe may take beyond its checks' timeout on a busy machine.
MARGIN = 1.2

#: README's Kubernetes layout: a trivial liveness check, and a readiness
#: check on a database that never answers.
KUBERNETES_APP = (
    hung_database_app(TIMEOUT)
    + """

@app.get("/")
def index():
    return "user traffic"
"""
)


#: Readiness, liveness and user traffic, as kubelet and a load balancer send them.
PATHS = ("/readyz", "/livez", "/")


def probe_in_thread(
    server: GunicornServer, path: str, timeout: float
) -> Bounded[Answer | None]:
    return Bounded(lambda: server.get(path, timeout), f"GET {path}")


def expect_answer(server: GunicornServer, path: str, timeout: float) -> Answer:
    answer = server.get(path, timeout)
    assert answer is not None, (
        f"GET {path} unanswered after {timeout:g} s\n{server.tail()}"
    )
    return answer


def test_a_hung_readiness_check_never_starves_liveness(
    gunicorn_server: StartGunicorn,
) -> None:
    """Issue 8, defect 1: once ``/readyz`` had timed out on the hung database,
    ``/livez`` waited for a free thread without a deadline, forever."""
    server = gunicorn_server(KUBERNETES_APP, workers=1, threads=4)
    deadline = TIMEOUT + MARGIN
    for number in range(8):
        calls = {path: probe_in_thread(server, path, deadline) for path in PATHS}
        answers = {
            path: call.result(deadline + 1, f"GET {path}")
            for path, call in calls.items()
        }
        for path, answer in answers.items():
            assert answer is not None, (
                f"round {number + 1}: GET {path} unanswered after {deadline:g} s"
                f"\n{server.tail()}"
            )
        ready, live, user = answers["/readyz"], answers["/livez"], answers["/"]
        assert ready is not None and live is not None and user is not None
        assert (ready.status, ready.body) == (500, FAILURE)
        assert live.status == 200, live.text
        assert (user.status, user.text) == (200, "user traffic")


SYS_EXIT_APP = """
import os
import sys

from flask import Flask

from flask_healthcheck import HealthCheck

app = Flask(__name__)
health = HealthCheck(app)


@health.check
def vendored_client():
    sys.exit(0)  # what some libraries do when they give up


@app.get("/pid")
def pid():
    return str(os.getpid())
"""


def test_sys_exit_in_a_check_never_kills_the_worker(
    gunicorn_server: StartGunicorn,
) -> None:
    """Issue 8, defect 4: the check's ``SystemExit`` escaped the view and
    ended the gthread worker; the probe got no answer."""
    server = gunicorn_server(SYS_EXIT_APP, workers=1, threads=4)
    worker = expect_answer(server, "/pid", 5).text
    for number in range(5):
        answer = server.get("/health", 5)
        assert answer is not None, (
            f"probe {number + 1} unanswered: the worker died\n{server.tail()}"
        )
        assert (answer.status, answer.body) == (500, FAILURE)
    assert expect_answer(server, "/pid", 5).text == worker, "the worker was replaced"


PRELOADED_APP = """
import os
from pathlib import Path

from flask import Flask

from flask_healthcheck import HealthCheck, signals

HERE = Path(__file__).parent
app = Flask(__name__)
app.config.update(
    HEALTHCHECK_INTERVAL=10,
    HEALTHCHECK_TIMEOUT=2,
    HEALTHCHECK_RUN_DIR=str(HERE / "run"),  # apart from other test runs
)
health = HealthCheck(app)


@health.check
def database():
    return (HERE / "switch").read_text() == "up"


def note_report(sender, report):
    (HERE / f"report-{os.getpid()}").write_text(report.status)


signals.health_checked.connect(note_report, app, weak=False)
health.start(app)  # what docs/deploying.md offers for a preloaded app
with app.app_context():
    # The master's own "pass", before it forks the workers (its refresh may
    # or may not get to run first: a process that forks stops its refresh).
    health.run()


@app.get("/pid")
def pid():
    return str(os.getpid())
"""


def wait_for_file(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} not written in {timeout} s"
        time.sleep(0.02)
    return path.read_text()


def test_a_forked_worker_never_answers_from_its_parents_report(
    gunicorn_server: StartGunicorn,
) -> None:
    """Issue 8, defect 9: with ``--preload`` and ``health.start(app)`` at
    import, a new worker's first probe answered the master's pre-fork
    "pass" while the check had been failing since."""
    server = gunicorn_server(
        PRELOADED_APP, workers=2, threads=2, preload=True, files={"switch": "up"}
    )
    master = server.process.pid
    assert wait_for_file(server.directory / f"report-{master}", 5) == "pass"
    (server.directory / "switch").write_text("down")
    time.sleep(0.2)
    statuses = []
    for _ in range(8):  # a new connection each: both workers answer some
        statuses.append(expect_answer(server, "/health", 2 + MARGIN).status)
    assert statuses == [500] * 8, "a worker served its parent's pre-fork report"


BURST_APP = (
    hung_database_app(TIMEOUT)
    + """
import os


@health.check(tags=["ready"])
def cache():
    return True


@app.get("/pid")
def pid():
    return str(os.getpid())


@app.get("/threads")
def threads():
    return str(threading.active_count())
"""
)


#: What each path must answer while ``database`` hangs.
EXPECTED = {
    "/livez": 200,
    "/readyz": 500,
    "/health": 500,
    "/health/alive": 200,
    "/health/database": 500,
    "/health/cache": 200,
    "/health?exclude=database": 200,
    "/readyz?exclude=database": 200,
    "/readyz/cache": 200,
    "/pid": 200,
}


def test_a_burst_of_200_mixed_probes_is_all_answered_by_stable_workers(
    gunicorn_server: StartGunicorn,
) -> None:
    server = gunicorn_server(BURST_APP, workers=2, threads=4)
    pids = {server.get("/pid", 5).text for _ in range(6)}  # type: ignore[union-attr]
    paths = list(EXPECTED) * 20
    deadline = 5.0  # a queue of 200 on 8 threads; every answer is quick but one

    def get(path: str) -> tuple[str, Answer | None]:
        return path, server.get(path, deadline)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(get, paths))
    elapsed = time.perf_counter() - start
    unanswered = [path for path, answer in answers if answer is None]
    assert not unanswered, f"{len(unanswered)} unanswered\n{server.tail()}"
    wrong = [
        (path, answer.status)
        for path, answer in answers
        if answer is not None and answer.status != EXPECTED[path]
    ]
    assert not wrong, wrong[:10]
    # The hung check costs one timeout per worker, not one per probe.
    assert elapsed < 2 * TIMEOUT + 1.5, f"the burst took {elapsed:.2f} s"
    for path, answer in answers:
        if answer is not None and path.startswith("/health?"):
            assert json.loads(answer.body)["status"] == "success"
    pids |= {answer.text for path, answer in answers if path == "/pid" and answer}
    pids |= {server.get("/pid", 5).text for _ in range(6)}  # type: ignore[union-attr]
    assert len(pids) <= 2, f"a worker was replaced: {pids}\n{server.tail()}"
    assert server.tail(200).count("Booting worker") == 2, server.tail()
    threads = [int(server.get("/threads", 5).text) for _ in range(4)]  # type: ignore[union-attr]
    # gthread's threads, the main one, a hung check, an idle pool thread,
    # the signal thread: never one per probe.
    assert max(threads) < 4 + 8, threads


#: The README's Kubernetes app with an alert subscriber that never returns:
#: a chat webhook whose server accepts the connection and then says nothing.
HUNG_SUBSCRIBER_APP = (
    KUBERNETES_APP
    + """

import threading

from flask_healthcheck.signals import check_failed

_never = threading.Event()


@check_failed.connect_via(app)
def page_the_on_call(sender, result, **extra):
    _never.wait()  # hangs for good
"""
)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_a_subscriber_that_hangs_for_good_never_holds_a_probe(
    gunicorn_server: StartGunicorn, worker_class: str
) -> None:
    """A ``check_failed`` subscriber that never returns, on the real server:
    every probe still answers within its checks' timeout (plus a margin),
    and the failure goes on being reported."""
    server = gunicorn_server(
        HUNG_SUBSCRIBER_APP, workers=1, threads=4, worker_class=worker_class
    )
    deadline = TIMEOUT + MARGIN
    for number in range(6):
        for path in PATHS:
            answer = server.get(path, deadline)
            assert answer is not None, (
                f"round {number + 1}: GET {path} unanswered after {deadline:g} s"
                f"\n{server.tail()}"
            )
            expected = 500 if path == "/readyz" else 200
            assert answer.status == expected, (path, answer.text)
