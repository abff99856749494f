"""A burst of mixed probes against a real gunicorn while one check hangs."""

from __future__ import annotations

import concurrent.futures
import json
import time

from .gunicorn import StartGunicorn
from .processes import Answer

TIMEOUT = 0.3

BURST_APP = f"""
import os
import threading

from flask import Flask

from flask_healthcheck import HealthCheck

app = Flask(__name__)
app.config.update(
    HEALTHCHECK_ENDPOINTS={{"/livez": ["live"], "/readyz": ["ready"]}},
    HEALTHCHECK_TIMEOUT={TIMEOUT},
)
health = HealthCheck(app)
never = threading.Event()


@health.check(tags=["live"])
def alive():
    return True


@health.check(tags=["ready"])
def database():
    never.wait()
    return True


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
