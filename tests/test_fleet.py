"""Many workers on one host, under a real gunicorn on loopback.

One worker of the host runs the checks every interval and sends the
alerts; Prometheus, in prometheus_client's multiprocess mode, sees the same
status whichever worker it scrapes; the shipped alert rules fire and
resolve on a real Prometheus server; the gunicorn recipe of
``docs/deploying.md`` drains before it stops.

The app notes what happens, one line per event in append mode (lines of
several processes never mix): ``runs`` gets ``<pid> <time> up|down`` per
run of the check, ``signals`` gets ``<pid> <time> <signal> <what>`` per
signal a subscriber received, in whichever worker.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .gunicorn import GunicornServer, StartGunicorn
from .helpers import PROBES, app_module
from .prometheus import StartPrometheus

pytestmark = pytest.mark.server

#: ``HEALTHCHECK_INTERVAL`` of the app, seconds.
INTERVAL = 0.5
WORKERS = 4
#: Seconds a worker drains after SIGTERM in the recipe's test.
DRAIN_SECONDS = 1.5

DOCS = Path(__file__).parent.parent / "docs"

FLEET_APP = (
    app_module(
        INTERVAL=INTERVAL,
        TIMEOUT=2,
        RUN_DIR='str(here / "run")',
        ENDPOINTS=PROBES,
        SHOW_DETAILS=True,
    )
    + """
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from flask_healthcheck.contrib.prometheus import init_prometheus, make_metrics_app


def note(name, *words):
    line = " ".join([str(os.getpid()), f"{time.time():.3f}", *words])
    with open(here / name, "a") as f:
        f.write(line + "\\n")


@health.check(tags=["ready"])
def database():
    up = (here / "switch").read_text() == "up"
    note("runs", "up" if up else "down")
    return up


@health.check(tags=["ready"])
def cache():
    return True


@signals.check_failed.connect_via(app)
def failed(sender, result):
    note("signals", "check_failed", result.name)


@signals.check_recovered.connect_via(app)
def recovered(sender, result):
    note("signals", "check_recovered", result.name)


@signals.health_changed.connect_via(app)
def changed(sender, report, previous):
    note("signals", "health_changed", report.status)


init_prometheus(app)
metrics = make_metrics_app()


def metrics_with_pid(environ, start_response):
    def start(status, headers, *args):
        return start_response(status, [*headers, ("X-Pid", str(os.getpid()))], *args)

    return metrics(environ, start)


app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": metrics_with_pid})
"""
)


def gunicorn_recipe() -> str:
    """The gunicorn config of ``docs/deploying.md``, for this test app."""
    match = re.search(
        r"<!-- recipe: gunicorn-conf -->\n```python\n(.*?)\n```",
        (DOCS / "deploying.md").read_text(),
        re.S,
    )
    assert match, "no gunicorn-conf recipe in docs/deploying.md"
    return match.group(1).replace("from myapp import", "from app_module import")


Lines = list[tuple[int, float, list[str]]]


def read_lines(path: Path) -> Lines:
    """``(pid, time, words)`` per line of a file the app notes events in."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        pid, when, *words = line.split()
        lines.append((int(pid), float(when), words))
    return lines


def start_fleet(
    gunicorn_server: StartGunicorn, tmp_path: Path, *, preload: bool
) -> GunicornServer:
    """The app under gunicorn, 4 workers, with the recipe's hooks and
    prometheus_client's multiprocess mode."""
    multiproc = tmp_path / f"multiproc-{preload}"
    multiproc.mkdir()
    return gunicorn_server(
        FLEET_APP,
        workers=WORKERS,
        threads=4,
        preload=preload,
        files={"switch": "up"},
        config=gunicorn_recipe(),
        env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc), "DRAIN_SECONDS": "30"},
    )


def wait_until(
    condition: Callable[[], bool], timeout: float, message: Callable[[], str]
) -> float:
    """Poll ``condition``; the time at which it held, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.05)
    return time.time()


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
@pytest.mark.slow
def test_one_worker_of_the_host_runs_the_checks_and_sends_the_alerts(
    gunicorn_server: StartGunicorn, tmp_path: Path, preload: bool
) -> None:
    server = start_fleet(gunicorn_server, tmp_path, preload=preload)
    runs_file, signals_file = server.directory / "runs", server.directory / "signals"
    switch = server.directory / "switch"

    # Steady state: about one run per interval, all from one process.
    time.sleep(1.0)
    start = time.time()
    time.sleep(5.0)
    steady = [r for r in read_lines(runs_file) if start <= r[1] < start + 5.0]
    pids = {pid for pid, _, _ in steady}
    gaps = [b[1] - a[1] for a, b in zip(steady, steady[1:], strict=False)]
    print(
        f"\n[{preload=}] runs in 5 s: {len(steady)} from {len(pids)} process(es);"
        f" shortest gap {min(gaps):.3f} s"
    )
    assert 8 <= len(steady) <= 12, steady
    assert len(pids) == 1, f"runs from {len(pids)} processes: {steady}"
    assert min(gaps) > INTERVAL / 2, f"two runs in one interval: {steady}"
    (refresher,) = pids

    # The dependency fails for about five intervals, then comes back.
    down_at = time.time()
    switch.write_text("down")
    time.sleep(5 * INTERVAL + 0.1)
    switch.write_text("up")
    wait_until(
        lambda: any(
            w[:2] == ["check_recovered", "database"]
            for _, _, w in read_lines(signals_file)
        ),
        INTERVAL + 2,
        lambda: f"no recovery:\n{signals_file.read_text()}",
    )
    time.sleep(INTERVAL)  # anything more would come by now
    seen = [s for s in read_lines(signals_file) if s[1] >= down_at]
    down_runs = [r for r in read_lines(runs_file) if r[2] == ["down"]]
    failed = [s for s in seen if s[2][0] == "check_failed"]
    changes = [s[2][1] for s in seen if s[2][0] == "health_changed"]
    recoveries = [s for s in seen if s[2][0] == "check_recovered"]
    print(
        f"[{preload=}] outage of {5 * INTERVAL + 0.1:.1f} s: {len(down_runs)} failing"
        f" runs, {len(failed)} check_failed, health_changed {changes},"
        f" {len(recoveries)} check_recovered, from {len({s[0] for s in seen})}"
        f" process(es)"
    )
    assert {pid for pid, _, _ in seen} == {refresher}
    assert {pid for pid, _, _ in down_runs} == {refresher}
    assert len(failed) == len(down_runs), "one check_failed per failing run"
    assert 4 <= len(failed) <= 7, "about one check_failed per interval"
    assert changes == ["fail", "pass"]
    assert len(recoveries) == 1

    # The refreshing worker is killed: another takes over within an interval.
    killed_at = time.time()
    os.kill(refresher, signal.SIGKILL)
    took_over = wait_until(
        lambda: any(
            pid != refresher and when > killed_at
            for pid, when, _ in read_lines(runs_file)
        ),
        INTERVAL + 1.0,
        lambda: f"no other worker refreshed:\n{server.tail()}",
    )
    first = min(
        when
        for pid, when, _ in read_lines(runs_file)
        if pid != refresher and when > killed_at
    )
    print(f"[{preload=}] taken over {first - killed_at:.3f} s after SIGKILL")
    assert first - killed_at <= INTERVAL + 1.0
    assert took_over


METRIC = re.compile(r'^health_check_status\{check="(\w+)"\} (\S+)$', re.M)


def test_every_worker_answers_a_scrape_with_the_same_status(
    gunicorn_server: StartGunicorn, tmp_path: Path
) -> None:
    server = start_fleet(gunicorn_server, tmp_path, preload=False)

    def scrape() -> tuple[str, dict[str, str]]:
        answer = server.get("/metrics", 5)
        assert answer is not None, f"/metrics unanswered\n{server.tail()}"
        assert answer.status == 200
        return answer.headers["X-Pid"], dict(METRIC.findall(answer.text))

    wait_until(
        lambda: set(scrape()[1]) == {"database", "cache"},
        5,
        lambda: "no gauges after 5 s",
    )
    # At least 20 scrapes; more, up to 100, until every worker answered one
    # (a worker back from answering tends to take the next connection too).
    scrapes: list[tuple[str, dict[str, str]]] = []
    while len(scrapes) < 20 or (
        len({pid for pid, _ in scrapes}) < WORKERS and len(scrapes) < 100
    ):
        scrapes.append(scrape())
        time.sleep(0.02)
    workers = {pid for pid, _ in scrapes}
    print(f"\n{len(scrapes)} scrapes answered by {len(workers)} workers")
    assert len(workers) >= 2, "every scrape landed on one worker"
    assert all(
        statuses == {"database": "1.0", "cache": "1.0"} for _, statuses in scrapes
    ), scrapes


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
@pytest.mark.slow
def test_prometheus_sees_the_failure_and_the_recovery(
    gunicorn_server: StartGunicorn,
    prometheus_server: StartPrometheus,
    tmp_path: Path,
    preload: bool,
) -> None:
    """The shipped rules, with ``for: 1s``, on a real Prometheus scraping the
    server every second; bounded by the waits below (about 15 s)."""
    begin = time.monotonic()
    server = start_fleet(gunicorn_server, tmp_path, preload=preload)
    rules = re.sub(
        r"for: \d+m", "for: 1s", (DOCS / "prometheus" / "health-rules.yml").read_text()
    )
    prometheus = prometheus_server([f"127.0.0.1:{server.port}"], rules)
    status = 'health_check_status{check="database"}'

    def value() -> float | None:
        return prometheus.query(status).get("database")

    def alert() -> str | None:
        return prometheus.alerts().get("HealthCheckFailing database")

    wait_until(lambda: value() == 1.0, 10, lambda: f"not scraped:\n{prometheus.tail()}")
    down_at = time.time()
    (server.directory / "switch").write_text("down")
    gauge_at = wait_until(lambda: value() == 0.0, 5, lambda: "status never 0")
    firing_at = wait_until(lambda: alert() == "firing", 8, lambda: "never fired")
    up_at = time.time()
    (server.directory / "switch").write_text("up")
    back_at = wait_until(lambda: value() == 1.0, 5, lambda: "status never 1 again")
    resolved_at = wait_until(lambda: alert() is None, 5, lambda: "never resolved")
    print(
        f"\n[{preload=}] Prometheus: status 0 after {gauge_at - down_at:.1f} s,"
        f" alert firing after {firing_at - down_at:.1f} s; status 1 after"
        f" {back_at - up_at:.1f} s, alert resolved after {resolved_at - up_at:.1f} s"
        f" (whole test {time.monotonic() - begin:.1f} s)"
    )
    assert time.monotonic() - begin < 40


def test_the_gunicorn_recipe_drains_before_it_stops(
    gunicorn_server: StartGunicorn, tmp_path: Path
) -> None:
    """SIGTERM to the master (what Kubernetes sends): for DRAIN_SECONDS every
    worker still answers, ``/readyz`` failing with "draining" and ``/livez``
    passing; then the workers stop and the master exits."""
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    server = gunicorn_server(
        FLEET_APP,
        workers=2,
        threads=4,
        files={"switch": "up"},
        config=gunicorn_recipe(),
        env={
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "DRAIN_SECONDS": str(DRAIN_SECONDS),
        },
        graceful_timeout=math.ceil(DRAIN_SECONDS) + 3,
    )
    ready = server.get("/readyz", 5)
    assert ready is not None and ready.status == 200, ready
    term_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)

    def draining() -> bool:
        answer = server.get("/readyz", 2)
        return answer is not None and answer.status == 500

    # The master passes SIGTERM on to the workers within moments.
    wait_until(draining, 1.0, lambda: f"no worker drains\n{server.tail()}")
    drained_after = time.monotonic() - term_at
    answers = []
    while time.monotonic() - term_at < DRAIN_SECONDS - 0.3:
        ready, live = server.get("/readyz", 2), server.get("/livez", 2)
        answers.append((ready and ready.status, live and live.status))
        if ready is not None:
            assert ready.status == 500 and "draining" in ready.text, ready
        time.sleep(0.1)
    assert answers and all(a == (500, 200) for a in answers), answers
    server.process.wait(DRAIN_SECONDS + 5)
    print(
        f"\ndraining {drained_after:.2f} s after SIGTERM; {len(answers)} probe"
        f" pairs answered 500/200; master exited"
        f" {time.monotonic() - term_at:.1f} s after SIGTERM"
    )
    assert time.monotonic() - term_at >= DRAIN_SECONDS
