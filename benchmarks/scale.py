"""How a probe scales with its checks, and what the background refresh costs
the app (issue 20).

    python benchmarks/scale.py                 # both parts, about 1 minute
    python benchmarks/scale.py --only checks   # the scale table alone
    python benchmarks/scale.py --only threads  # threads per probe, 4 workloads
    python benchmarks/scale.py --only refresh  # the gunicorn part alone
    python benchmarks/scale.py --quick

``checks``: uncached trivial checks (``return True``), 1, 10, 100 and 1,000
of them, one probe at a time through Flask's test client: this extension
with its checks on pool threads ("ours") and inline on the request thread
(``HEALTHCHECK_THREADS = False``), flask-healthz (its one ``ready`` function
calling them in turn) and a bare Flask route (no checks), in the same run.
Per probe: the median time, and for "ours" the pool threads the probes
started (at most 5 x flask-healthz at 1,000, and linear, are the goals).

``threads``: the pool threads a probe starts, and its time, for 1,000
trivial checks, 300 checks of 0.2 ms of I/O, 20 of 5 ms, 10 of 1 s of I/O and 10 of
50 ms of CPU: threads grow with checks that are stuck, not with checks that
are queued.

``refresh``: one gunicorn gthread worker (4 threads) in a subprocess on
127.0.0.1, serving the app's own small JSON route to 8 keep-alive clients:
without the extension, with the refresher running 10 trivial checks every
second, and running 10 checks of 50 ms of CPU every second. Requests per
second against the run without the extension (goal >= 0.95 for the trivial
checks; the CPU-bound ones are a documented cost, not a goal), and p99.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (HERE, ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from adapters import (  # noqa: E402
    build_app_bare,
    build_app_flask_healthz,
    keep_getting,
)
from tests.helpers import burn  # noqa: E402

from flask_healthcheck import HealthCheck  # noqa: E402
from flask_healthcheck.state import get_state  # noqa: E402

SIZES = (1, 10, 100, 1000)


def trivial_check() -> bool:
    return True


# ------------------------------------------------------------------ the table


@dataclass
class Column:
    key: str
    path: str
    build: Callable[[int], Flask]
    #: The extension's app: its pool's threads are counted.
    ours: bool = False


def build_ours(count: int, *, threads: bool) -> Flask:
    app = Flask(f"scale_ours_{'threads' if threads else 'inline'}_{count}")
    app.config["HEALTHCHECK_THREADS"] = threads
    health = HealthCheck(app)
    for i in range(count):
        health.add_check(trivial_check, name=f"check_{i}")
    return app


COLUMNS = (
    Column("ours", "/health", lambda n: build_ours(n, threads=True), ours=True),
    Column("ours inline", "/health", lambda n: build_ours(n, threads=False), ours=True),
    Column(
        "flask-healthz",
        "/healthz/ready",
        lambda n: build_app_flask_healthz(
            [trivial_check] * n, timeout=None, cache_ttl=0
        ),
    ),
    Column(
        "bare",
        "/health",
        lambda n: build_app_bare([], timeout=None, cache_ttl=0),
    ),
)


@dataclass
class Measure:
    median_ms: float
    probes: int
    threads: int | None


def measure(column: Column, count: int, budget: float, most: int) -> Measure:
    """The median time of one probe, over at most ``most`` probes or
    ``budget`` seconds, after a warm-up."""
    app = column.build(count)
    client = app.test_client()
    for _ in range(5):
        response = client.get(column.path)
        assert response.status_code == 200, (column.key, response.status_code)
    times: list[float] = []
    end = time.perf_counter() + budget
    while len(times) < most and (len(times) < 5 or time.perf_counter() < end):
        start = time.perf_counter()
        response = client.get(column.path)
        times.append(time.perf_counter() - start)
        response.close()
    threads = get_state(app).runner.pool.thread_count if column.ours else None
    return Measure(statistics.median(times) * 1000, len(times), threads)


def table(quick: bool, sizes: tuple[int, ...] = SIZES) -> list[str]:
    budget, most = (0.4, 300) if quick else (1.5, 2000)
    results: dict[tuple[str, int], Measure] = {}
    # Sizes in turn, each column once per size: what runs alongside in the
    # machine weighs on all columns of a row alike.
    for count in sizes:
        for column in COLUMNS:
            results[column.key, count] = measure(column, count, budget, most)
            print(
                f"  {count:>5} {column.key:<14}"
                f" {results[column.key, count].median_ms:8.3f} ms",
                file=sys.stderr,
                flush=True,
            )
    header = ["checks", *(c.key for c in COLUMNS), "ours threads (peak)"]
    header += ["ours / healthz", "inline / healthz", "ours / bare"]
    rows = []
    for count in sizes:
        ours = results["ours", count]
        inline = results["ours inline", count]
        healthz = results["flask-healthz", count]
        bare = results["bare", count]
        rows.append(
            [
                f"{count:,}",
                *(f"{results[c.key, count].median_ms:.3f} ms" for c in COLUMNS),
                str(ours.threads),
                f"{ours.median_ms / healthz.median_ms:.2f}",
                f"{inline.median_ms / healthz.median_ms:.2f}",
                f"{ours.median_ms / bare.median_ms:.2f}",
            ]
        )
    lines = [render(header, rows), ""]
    if not {1, 100, 1000} <= set(sizes):
        return lines
    for key in ("ours", "ours inline", "flask-healthz"):
        one, hundred, thousand = (results[key, n].median_ms for n in (1, 100, 1000))
        per_check = (thousand - one) / 999 * 1000
        lines.append(
            f"{key}: {per_check:.1f} us per check from 1 to 1,000;"
            f" 1,000 checks / 100 checks = {thousand / hundred:.1f} (linear: 10)"
        )
    ours_ms = results["ours", 1000].median_ms
    healthz_ms = results["flask-healthz", 1000].median_ms
    lines.append(
        f"goal at 1,000: ours <= 5 x flask-healthz: {ours_ms / healthz_ms:.2f} x"
        f" ({'met' if ours_ms <= 5 * healthz_ms else 'NOT met'})"
    )
    return lines


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


# ------------------------------------------------------------ threads per probe


def sleeper(seconds: float) -> Callable[[], bool]:
    def check() -> bool:
        time.sleep(seconds)
        return True

    return check


#: name, number of checks, the check, probes.
WORKLOADS: tuple[tuple[str, int, Callable[[], bool], int], ...] = (
    ("trivial (return True)", 1000, trivial_check, 20),
    ("0.2 ms of I/O (a loopback ping)", 300, sleeper(0.0002), 10),
    ("5 ms of I/O (a query)", 20, sleeper(0.005), 20),
    ("1 s of I/O", 10, sleeper(1.0), 2),
    ("50 ms of CPU", 10, burn(0.05), 2),
)


def threads_per_probe() -> list[str]:
    """For each workload, a fresh app: the median probe and the pool
    threads its probes started (idle threads stay a minute: the peak)."""
    rows = []
    for name, count, check, probes in WORKLOADS:
        app = Flask(f"scale_threads_{count}")
        health = HealthCheck(app)
        for i in range(count):
            health.add_check(check, name=f"check_{i}")
        client = app.test_client()
        times = []
        for _ in range(probes):
            start = time.perf_counter()
            assert client.get("/health").status_code == 200
            times.append(time.perf_counter() - start)
        threads = get_state(app).runner.pool.thread_count
        rows.append(
            [
                f"{count:,} x {name}",
                f"{statistics.median(times) * 1000:,.1f} ms",
                str(threads),
            ]
        )
    return [render(["checks", "probe (median)", "pool threads"], rows)]


# ------------------------------------------------------ the refresh, gunicorn


@dataclass
class Load:
    ok: int
    errors: int
    latencies: list[float]
    seconds: float
    refreshes: int

    @property
    def rps(self) -> float:
        return self.ok / self.seconds

    @property
    def p99_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98] * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def get(port: int, path: str, timeout: float = 5.0) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def load(port: int, clients: int, warmup: float, duration: float) -> Load:
    """``clients`` keep-alive clients on ``/`` for ``warmup + duration``
    seconds; what answered within the last ``duration`` is counted."""
    begin = time.perf_counter() + warmup
    end = begin + duration
    lock = threading.Lock()
    result = Load(0, 0, [], duration, 0)

    def record(status: int | None, sent: float, done: float) -> None:
        if begin <= sent and done < end:
            with lock:
                if status == 200:
                    result.ok += 1
                    result.latencies.append(done - sent)
                else:
                    result.errors += 1

    def client() -> None:
        keep_getting(port, "/", 5, end, record)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(warmup + duration + 10)
    return result


def serve(checks: str, warmup: float, duration: float) -> Load | str:
    """Load one gunicorn worker serving ``refresh_target:create_app``; a
    text saying why not otherwise."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory() as run_dir, tempfile.TemporaryFile("w+") as log:
        env["SCALE_RUN_DIR"] = run_dir
        cmd = [
            sys.executable, "-m", "gunicorn",
            "--chdir", str(HERE),
            "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--workers", "1", "--threads", "4",
            "--graceful-timeout", "1",
            f"refresh_target:create_app(checks={checks!r})",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=log, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    return f"gunicorn did not start: {log.read()[-300:]}"
                try:
                    get(port, "/", 2)
                    break
                except OSError:
                    time.sleep(0.1)
            result = load(port, 8, warmup, duration)
            result.refreshes = int(get(port, "/refreshes"))
            return result
        finally:
            proc.terminate()  # the server we started, and its worker
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def refresh(quick: bool, rounds: int | None = None) -> list[str]:
    """Rounds of the three servers in turn, in reverse order every other
    round (so that none is always first); each ratio is taken within a
    round (what else runs on the machine changes less within one)."""
    default_rounds, warmup, duration = (2, 1.0, 3.0) if quick else (3, 1.5, 5.0)
    rounds = rounds or default_rounds
    kinds = ("none", "trivial", "cpu")
    runs: dict[str, list[Load]] = {kind: [] for kind in kinds}
    for number in range(rounds):
        for kind in kinds if number % 2 == 0 else kinds[::-1]:
            measured = serve(kind, warmup, duration)
            if isinstance(measured, str):
                return [f"refresh: {measured}"]
            print(
                f"  {kind:<8} {measured.rps:8.0f} req/s p99 {measured.p99_ms:.1f} ms"
                f" ({measured.refreshes} refreshes)",
                file=sys.stderr,
                flush=True,
            )
            runs[kind].append(measured)
    titles = {
        "none": "without the extension",
        "trivial": "refresher: 10 trivial checks / 1 s",
        "cpu": "refresher: 10 checks of 50 ms CPU / 1 s",
    }
    header = ["app's route, gunicorn gthread 1x4", "req/s", "x without", "p99"]
    ratios = {
        kind: statistics.median(
            run.rps / base.rps
            for run, base in zip(runs[kind], runs["none"], strict=True)
        )
        for kind in kinds
    }
    rows = [
        [
            titles[kind],
            f"{statistics.median(run.rps for run in runs[kind]):,.0f}",
            f"{ratios[kind]:.2f}",
            f"{statistics.median(run.p99_ms for run in runs[kind]):.1f} ms",
        ]
        for kind in kinds
    ]
    lines = [render(header, rows), ""]
    lines.append(
        f"medians of {rounds} rounds of {duration:g} s each, 8 keep-alive clients;"
        " ratios within a round"
    )
    for kind in ("trivial", "cpu"):
        refreshes = sum(run.refreshes for run in runs[kind])
        errors = sum(run.errors for run in runs[kind])
        lines.append(
            f"{titles[kind]}: {refreshes} refreshes in all, {errors} failed requests"
        )
    trivial = ratios["trivial"]
    spread = sorted(
        run.rps / base.rps
        for run, base in zip(runs["trivial"], runs["none"], strict=True)
    )
    lines.append(
        f"trivial checks, x without per round: {', '.join(f'{r:.2f}' for r in spread)}"
    )
    for goal in (0.95, 0.97):
        lines.append(
            f"goal: >= {goal} x without the extension, trivial checks:"
            f" {trivial:.2f} x ({'met' if trivial >= goal else 'NOT met'})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", choices=("checks", "threads", "refresh"), default=None
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=SIZES,
        help="numbers of checks for the table, comma-separated (default 1,10,100,1000)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of the refresh (default 3)"
    )
    args = parser.parse_args(argv)
    print(
        f"# scale - Python {platform.python_version()}, {platform.machine()},"
        f" {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    if args.only in (None, "checks"):
        print("\nuncached trivial checks, one probe (median):")
        print("\n".join(table(args.quick, args.sizes)))
    if args.only in (None, "threads"):
        print("\nthreads a probe starts:")
        print("\n".join(threads_per_probe()))
    if args.only in (None, "refresh"):
        print("\nthe app's own route with the background refresh:")
        print("\n".join(refresh(args.quick, args.rounds)))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
