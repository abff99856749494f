"""Benchmark flask_healthcheck ("ours") against py-healthcheck, flask-healthz and a
bare Flask route, all in the same run.

    python benchmarks/run.py            # full run, ~2 min
    python benchmarks/run.py --quick    # shorter, ~40 s
    python benchmarks/run.py --only storm,hung --libs ours,py-healthcheck

Every request goes to an in-process Flask test client, except scenario 6 which
serves each app with waitress in a subprocess on 127.0.0.1 (OS-assigned port)
and loads it from this process with a small keep-alive http.client loader.
All loops are bounded by a request count and a time budget.

Scenarios 5 (hung check) and 7 (tracemalloc) run each library in a fresh child
interpreter (``run.py --child``) so thread counts and traced memory are not
polluted by other libraries; 7 runs two children at once (tracemalloc makes
every probe several times slower).

Why a pure-Python loader for scenario 6 rather than ``wrk``: it needs nothing
from apt (CI installs only ``requirements.txt``), it is bounded by the same
code as everything else, and on a 2-core box the server - one waitress process,
GIL-bound to about one core - saturates first: the notes print the server's and
the loader's CPU share per library so that claim is checked on every run.
Absolute req/s are therefore a floor for the server; the ratios are what count.

"ours" is optional: when ``flask_healthcheck`` cannot be imported its column
says so and the ratio lines use the first available peer as the baseline.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import importlib.util
import json
import os
import platform
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


def _add_repo_paths() -> list[str]:
    """Make an in-repo, not-installed flask_healthcheck importable (flat or src/)."""
    added: list[str] = []
    for root in (HERE.parent, HERE.parent / "src"):
        if (root / "flask_healthcheck").is_dir() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
            added.append(str(root))
    return added


EXTRA_PYTHONPATH = _add_repo_paths()

from adapters import (  # noqa: E402
    ALL_ADAPTERS,
    Adapter,
    CountingCheck,
    adapter_import_error,
    keep_getting,
    py_healthcheck_alarm_seconds,
    sleeping_check,
    trivial_check,
)
from page import run as run_status_page  # noqa: E402
from probe_cost import run as run_probe  # noqa: E402
from redaction import run as run_redaction  # noqa: E402

# ------------------------------------------------------------------------ profiles


@dataclass(frozen=True)
class Profile:
    """How much each scenario does; the defaults are the full run."""

    name: str
    s1_reps: int = 5
    s2_reps: int = 3
    s3_max_requests: int = 2000
    s3_budget_s: float = 2.5
    s4_clients: int = 16
    s4_sleep_s: float = 0.4
    s4_ttls: tuple[float, ...] = (0.0, 5.0)
    s5_hang_s: float = 4.0
    s5_timeout_s: float = 0.5
    s5_max_probes: int = 100
    s5_budget_s: float = 20.0
    s6_clients: int = 8
    s6_server_threads: int = 8
    s6_checks: int = 3
    s6_check_sleep_s: float = 0.02
    s6_cache_ttl: float = 5.0
    s6_warmup_s: float = 0.5
    s6_duration_s: float = 3.0
    s7_checks: int = 3
    s7_first: int = 1_000
    s7_total: int = 10_000
    s7_budget_s: float = 30.0
    s8_clients: int = 8
    s8_server_threads: int = 4
    s8_timeout_s: float = 0.5
    s8_client_timeout_s: float = 2.0
    s8_warmup_s: float = 0.5
    s8_duration_s: float = 3.0


FULL = Profile(name="full")

QUICK = replace(
    FULL,
    name="quick",
    s1_reps=3,
    s2_reps=1,
    s3_max_requests=500,
    s3_budget_s=0.8,
    s5_budget_s=3.0,
    s6_warmup_s=0.3,
    s6_duration_s=1.0,
    s7_first=200,
    s7_total=2_000,
    s7_budget_s=8.0,
    s8_duration_s=1.5,
)

# -------------------------------------------------------------------------- result

Compare = Literal["ratio", "diff", "none"]


@dataclass
class Cell:
    text: str
    value: float | None = None  # what ratios/diffs are computed from


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    better: Literal["lower", "higher", ""] = "lower"
    compare: Compare = "ratio"
    vs_bare: bool = False  # bare runs no checks: only compare where meaningful


@dataclass
class Context:
    profile: Profile
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


ScenarioFn = Callable[[Adapter, Context], list[Cell]]


@dataclass(frozen=True)
class Scenario:
    key: str
    number: str
    rows: tuple[Row, ...]
    fn: ScenarioFn
    parallel: int = 1  # libraries run at once (only for subprocess scenarios)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_time(seconds: float) -> str:
    if seconds < 1.0:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def na(reason: str) -> Cell:
    return Cell(f"n/a ({reason})")


def timed_get(client: object, path: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    resp = client.get(path)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - t0
    status = int(resp.status_code)
    resp.close()
    return status, elapsed


# ------------------------------------------------------------------- scenarios 1-2


def _sleeping_request(adapter: Adapter, ctx: Context, n: int, reps: int) -> list[Cell]:
    checks = [sleeping_check(0.1) for _ in range(n)]
    app = adapter.build_app(checks, timeout=None, cache_ttl=0.0)
    client = app.test_client()
    times: list[float] = []
    bad: set[int] = set()
    for _ in range(reps):
        status, elapsed = timed_get(client, adapter.path)
        times.append(elapsed)
        if status != 200:
            bad.add(status)
    med = statistics.median(times)
    text = fmt_time(med)
    if not adapter.runs_checks:
        text += " (no checks)"
    if bad:
        text += f" [HTTP {sorted(bad)}]"
    return [Cell(text, med)]


def s1(adapter: Adapter, ctx: Context) -> list[Cell]:
    return _sleeping_request(adapter, ctx, 5, ctx.profile.s1_reps)


def s2(adapter: Adapter, ctx: Context) -> list[Cell]:
    return _sleeping_request(adapter, ctx, 20, ctx.profile.s2_reps)


# ---------------------------------------------------------------------- scenario 3


def s3(adapter: Adapter, ctx: Context) -> list[Cell]:
    p = ctx.profile
    app = adapter.build_app([trivial_check] * 20, timeout=None, cache_ttl=0.0)
    client = app.test_client()
    for _ in range(20):  # warm-up
        timed_get(client, adapter.path)
    times: list[float] = []
    bad: set[int] = set()
    deadline = time.perf_counter() + p.s3_budget_s
    while len(times) < p.s3_max_requests and time.perf_counter() < deadline:
        status, elapsed = timed_get(client, adapter.path)
        times.append(elapsed)
        if status != 200:
            bad.add(status)
    med_ms = statistics.median(times) * 1000
    mean_ms = statistics.fmean(times) * 1000
    text = f"{med_ms:.3f} ms (mean {mean_ms:.3f}, n={len(times)})"
    if not adapter.runs_checks:
        text += " no checks"
    if bad:
        text += f" [HTTP {sorted(bad)}]"
    return [Cell(text, med_ms)]


# ---------------------------------------------------------------------- scenario 4


def _storm(adapter: Adapter, p: Profile, ttl: float) -> Cell:
    counting = CountingCheck(sleeping_check(p.s4_sleep_s))
    app = adapter.build_app([counting], timeout=None, cache_ttl=ttl)
    clients = [app.test_client() for _ in range(p.s4_clients)]
    barrier = threading.Barrier(p.s4_clients + 1, timeout=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(client: object) -> None:
        barrier.wait()  # all clients fire at once
        status, _ = timed_get(client, adapter.path)
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=30)
    wall = time.perf_counter() - t0
    text = f"{counting.calls} runs / {p.s4_clients} req ({wall:.2f} s)"
    if ttl > 0 and not adapter.supports_cache:
        text += " no cache"
    bad = sorted({s for s in statuses if s != 200})
    if bad:
        text += f" [HTTP {bad}]"
    return Cell(text, float(counting.calls))


def s4(adapter: Adapter, ctx: Context) -> list[Cell]:
    p = ctx.profile
    if not adapter.runs_checks:
        return [na("no checks") for _ in p.s4_ttls]
    return [_storm(adapter, p, ttl) for ttl in p.s4_ttls]


# ---------------------------------------------------------------------- scenario 5


def measure_hung(
    key: str, hang: float, timeout: float, max_probes: int, budget: float
) -> dict[str, Any]:
    """Runs in a fresh child process (see s5), in its main thread, so thread
    counts are not polluted by other libraries' leftovers and py-healthcheck's
    SIGALRM timeouts can work."""
    from adapters import get_adapter

    adapter = get_adapter(key)
    app = adapter.build_app([sleeping_check(hang)], timeout=timeout, cache_ttl=0.0)
    client = app.test_client()
    gc.collect()
    before = threading.active_count()
    peak = before
    times: list[float] = []
    statuses: list[int] = []
    deadline = time.perf_counter() + budget
    while len(times) < max_probes and time.perf_counter() < deadline:
        status, elapsed = timed_get(client, adapter.path)
        times.append(elapsed)
        statuses.append(status)
        peak = max(peak, threading.active_count())
    after = threading.active_count()
    settled = after
    if after > before:  # abandoned check threads still sleeping: do they go away?
        settle_deadline = time.perf_counter() + hang + 0.5
        while settled > before and time.perf_counter() < settle_deadline:
            time.sleep(0.1)
            settled = threading.active_count()
    return {
        "times": times,
        "statuses": statuses,
        "before": before,
        "after": after,
        "peak": peak,
        "settled": settled,
    }


def s5(adapter: Adapter, ctx: Context) -> list[Cell]:
    p = ctx.profile
    if not adapter.runs_checks:
        return [na("no checks"), na("no checks")]
    probes = p.s5_max_probes if adapter.supports_timeout else 1
    out = run_child(
        "hung",
        {
            "key": adapter.key,
            "hang": p.s5_hang_s,
            "timeout": p.s5_timeout_s,
            "max_probes": probes,
            "budget": p.s5_budget_s,
        },
        timeout=p.s5_budget_s + 2 * p.s5_hang_s + 30,
    )
    if isinstance(out, str):
        return [Cell(out), Cell(out)]
    times: list[float] = out["times"]
    statuses: list[int] = out["statuses"]
    first, first_status = times[0], statuses[0]
    if not adapter.supports_timeout:
        ctx.note(
            f"{adapter.key}: no timeouts - one probe of the {p.s5_hang_s:g} s check "
            f"blocked {first:.2f} s (HTTP {first_status}); the {p.s5_max_probes} "
            "sequential probes were skipped (would take "
            f"{p.s5_max_probes * p.s5_hang_s:.0f} s)."
        )
        return [
            Cell(f"n/a (no timeouts; waited {first:.2f} s, {first_status})"),
            na("no timeouts"),
        ]

    med = statistics.median(times)
    status_txt = "/".join(str(s) for s in sorted(set(statuses)))
    t_text = f"first {fmt_time(first)}, median {fmt_time(med)} ({status_txt})"
    if adapter.key == "py-healthcheck":
        alarm = py_healthcheck_alarm_seconds(p.s5_timeout_s)
        t_text += f" alarm={alarm}s"
        ctx.note(
            f"py-healthcheck: error_timeout uses signal.alarm(int seconds): a "
            f"{p.s5_timeout_s:g} s timeout was rounded up to {alarm} s (a float "
            "raises TypeError inside the check -> instant false failure). SIGALRM "
            "only works in the main thread: under a threaded server every check "
            "fails with 'signal only works in main thread'."
        )
    before, after, peak, settled = (
        out["before"],
        out["after"],
        out["peak"],
        out["settled"],
    )
    thr_text = f"{before}->{after} (peak {peak}, {len(times)} probes"
    if settled != after:
        thr_text += f"; {settled} after +{p.s5_hang_s + 0.5:g} s"
    thr_text += ")"
    if len(times) < p.s5_max_probes:
        ctx.note(
            f"{adapter.key}: scenario 5 stopped at {len(times)}/{p.s5_max_probes} "
            f"probes (time budget {p.s5_budget_s:g} s; raise with --s5-budget)."
        )
    return [Cell(t_text, first), Cell(thr_text, float(after - before))]


# ---------------------------------------------------------------------- scenario 6


def _cpu_seconds(pid: int) -> float:
    """utime+stime of a process from /proc (Linux); 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    server_cpu: float
    loader_cpu: float


def _load(
    port: int, path: str, clients: int, warmup: float, duration: float, server_pid: int
) -> LoadResult:
    start = time.perf_counter()
    measure_from = start + warmup
    measure_to = measure_from + duration
    counts = [0] * clients
    errors = [0] * clients

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            while True:
                now = time.perf_counter()
                if now >= measure_to:
                    break
                try:
                    conn.request("GET", path)
                    resp = conn.getresponse()
                    resp.read()
                    ok = resp.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                done = time.perf_counter()
                if measure_from <= done < measure_to:
                    if ok:
                        counts[i] += 1
                    else:
                        errors[i] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    srv0, me0 = _cpu_seconds(server_pid), time.process_time()
    time.sleep(max(0.0, measure_to - time.perf_counter()))
    srv1, me1 = _cpu_seconds(server_pid), time.process_time()
    for t in threads:
        t.join(timeout=15)
    return LoadResult(
        requests=sum(counts),
        errors=sum(errors),
        seconds=duration,
        server_cpu=(srv1 - srv0) / duration,
        loader_cpu=(me1 - me0) / duration,
    )


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().strip()
            if line.startswith("READY "):
                return int(line.split()[1])
    raise RuntimeError("server did not report READY in time")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    if EXTRA_PYTHONPATH:
        env["PYTHONPATH"] = os.pathsep.join(
            [*EXTRA_PYTHONPATH, *filter(None, [env.get("PYTHONPATH")])]
        )
    return env


def s6(adapter: Adapter, ctx: Context) -> list[Cell]:
    p = ctx.profile
    env = _child_env()
    cmd = [
        sys.executable,
        str(HERE / "wsgi_target.py"),
        "--lib", adapter.key,
        "--checks", str(p.s6_checks),
        "--check-sleep", str(p.s6_check_sleep_s),
        "--cache-ttl", str(p.s6_cache_ttl),
        "--threads", str(p.s6_server_threads),
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as errf:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env
        )
        try:
            try:
                port = _wait_ready(proc, timeout=20)
            except RuntimeError as exc:
                errf.seek(0)
                tail = errf.read().strip().splitlines()[-1:] or [""]
                return [Cell(f"ERR {exc}: {tail[0][:60]}")]
            res = _load(
                port,
                adapter.path,
                p.s6_clients,
                p.s6_warmup_s,
                p.s6_duration_s,
                proc.pid,
            )
        finally:
            proc.terminate()  # only the child we started
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    rps = res.requests / res.seconds
    text = f"{rps:,.0f} req/s"
    if res.errors:
        text += f" [{res.errors} errors]"
    if not adapter.supports_cache and adapter.runs_checks:
        text += " uncached"
    ctx.note(
        f"{adapter.key}: waitress server CPU {res.server_cpu:.0%} of a core, "
        f"loader CPU {res.loader_cpu:.0%} during the {res.seconds:g} s window."
    )
    return [Cell(text, rps)]


# ---------------------------------------------------------------------- scenario 7


def measure_memory(
    key: str, checks: int, first: int, total: int, budget: float
) -> dict[str, int]:
    """Runs in a fresh child process (see s7): traced memory after `first` and
    after `total` probes (or when the time budget runs out)."""
    from adapters import get_adapter

    adapter = get_adapter(key)
    app = adapter.build_app([trivial_check] * checks, timeout=None, cache_ttl=0.0)
    client = app.test_client()
    path = adapter.path
    client.get(path).close()  # first-request setup outside the trace
    gc.collect()
    tracemalloc.start()
    try:
        deadline = time.perf_counter() + budget
        done = 0
        while done < first:
            client.get(path).close()
            done += 1
        gc.collect()
        first_mem = tracemalloc.get_traced_memory()[0]
        while done < total and time.perf_counter() < deadline:
            client.get(path).close()
            done += 1
        gc.collect()
        last_mem = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {"first_mem": first_mem, "last_mem": last_mem, "done": done}


def s7(adapter: Adapter, ctx: Context) -> list[Cell]:
    """tracemalloc in a fresh subprocess per library: isolates the measurement
    from earlier scenarios and lets two libraries run at once (tracemalloc makes
    each probe ~5x slower)."""
    p = ctx.profile
    spec = {
        "key": adapter.key,
        "checks": p.s7_checks,
        "first": p.s7_first,
        "total": p.s7_total,
        "budget": p.s7_budget_s,
    }
    out = run_child("memory", spec, timeout=p.s7_budget_s + 60)
    if isinstance(out, str):
        return [Cell(out)]
    first_mem, last_mem, done = out["first_mem"], out["last_mem"], out["done"]
    growth_kib = (last_mem - first_mem) / 1024
    per_probe = (last_mem - first_mem) / max(1, done - p.s7_first)
    text = (
        f"{growth_kib:+.1f} KiB ({per_probe:+.1f} B/probe, {p.s7_first}->{done} probes)"
    )
    if done < p.s7_total:
        ctx.note(
            f"{adapter.key}: scenario 7 stopped at {done}/{p.s7_total} probes "
            f"(time budget {p.s7_budget_s:g} s)."
        )
    return [Cell(text, growth_kib)]


# ---------------------------------------------------------------------- scenario 8


@dataclass
class ProbeLoad:
    """Scenario 8: /livez under load while /readyz is probed too."""

    live_ok: int
    live_latencies: list[float]
    live_errors: int  # answered, but not 200
    unanswered: int  # /livez or /readyz: no answer within the client timeout
    ready_probes: int
    seconds: float


def _probe_load(
    port: int, clients: int, warmup: float, duration: float, timeout: float
) -> ProbeLoad:
    """``clients`` keep-alive clients on /livez and one client probing
    /readyz, for ``warmup + duration`` seconds; /livez counted in the window."""
    start = time.perf_counter()
    measure_from = start + warmup
    measure_to = measure_from + duration
    lock = threading.Lock()
    load = ProbeLoad(0, [], 0, 0, 0, duration)

    def client(path: str) -> None:
        def record(status: int | None, sent: float, done: float) -> None:
            with lock:
                if status is None:
                    load.unanswered += 1
                elif path == "/readyz":
                    load.ready_probes += 1
                elif measure_from <= done < measure_to:
                    if status == 200:
                        load.live_ok += 1
                        load.live_latencies.append(done - sent)
                    else:
                        load.live_errors += 1

        keep_getting(port, path, timeout, measure_to, record)

    paths = ["/readyz"] + ["/livez"] * clients
    threads = [threading.Thread(target=client, args=(p,), daemon=True) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=warmup + duration + timeout + 5)
    return load


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _serve_gunicorn(hung: bool, p: Profile) -> ProbeLoad | str:
    """One gunicorn gthread worker serving gunicorn_target, loaded; or an
    "ERR ..." text."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--chdir", str(HERE),
        "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread",
        "--workers", "1",
        "--threads", str(p.s8_server_threads),
        "--graceful-timeout", "1",
        f"gunicorn_target:create_app(hung={hung}, timeout={p.s8_timeout_s})",
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as errf:
        proc = subprocess.Popen(
            cmd, stdout=errf, stderr=errf, env=_child_env(), start_new_session=True
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    errf.seek(0)
                    tail = (errf.read().strip().splitlines() or [""])[-1]
                    return f"ERR gunicorn did not start: {tail[:60]}"
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/livez")
                    if conn.getresponse().status == 200:
                        conn.close()
                        break
                except OSError:
                    time.sleep(0.1)
            return _probe_load(
                port,
                p.s8_clients,
                p.s8_warmup_s,
                p.s8_duration_s,
                p.s8_client_timeout_s,
            )
        finally:
            proc.terminate()  # only the server we started, and its worker
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _p99(latencies: list[float]) -> float | None:
    if len(latencies) < 2:
        return None
    return statistics.quantiles(latencies, n=100)[98]


def s8(adapter: Adapter, ctx: Context) -> list[Cell]:
    """/livez throughput and p99 with /readyz hung, against a healthy run."""
    p = ctx.profile
    if adapter.key != "ours":
        return [na("no tagged endpoints")] * 3
    if importlib.util.find_spec("gunicorn") is None:
        return [na("gunicorn not installed")] * 3
    healthy = _serve_gunicorn(False, p)
    hung = _serve_gunicorn(True, p)
    if isinstance(healthy, str) or isinstance(hung, str):
        text = healthy if isinstance(healthy, str) else str(hung)
        return [Cell(text)] * 3
    healthy_rps = healthy.live_ok / healthy.seconds
    hung_rps = hung.live_ok / hung.seconds
    ratio = hung_rps / healthy_rps if healthy_rps else 0.0
    rps_text = f"{hung_rps:,.0f} req/s = {ratio:.2f} x healthy ({healthy_rps:,.0f})"
    hung_p99, healthy_p99 = _p99(hung.live_latencies), _p99(healthy.live_latencies)
    p99_text = (
        f"{fmt_time(hung_p99) if hung_p99 is not None else 'n/a'} "
        f"(healthy {fmt_time(healthy_p99) if healthy_p99 is not None else 'n/a'})"
    )
    lost_text = f"{hung.unanswered} unanswered (healthy {healthy.unanswered})"
    if hung.live_errors or healthy.live_errors:
        lost_text += f", non-200 /livez {hung.live_errors}/{healthy.live_errors}"
    ctx.note(
        f"{adapter.key}: scenario 8 probed /readyz {hung.ready_probes} times with "
        f"the check hung, {healthy.ready_probes} times healthy; a request is "
        f"unanswered after {p.s8_client_timeout_s:g} s. Target: >= 0.9 x healthy, "
        "0 unanswered."
    )
    return [
        Cell(rps_text, ratio),
        Cell(p99_text, hung_p99),
        Cell(lost_text, float(hung.unanswered)),
    ]


# ------------------------------------------------------------------- child runs

CHILD_KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "hung": measure_hung,
    "memory": measure_memory,
}


def run_child(
    kind: str, args: dict[str, Any], *, timeout: float
) -> dict[str, Any] | str:
    """Run CHILD_KINDS[kind](**args) in a fresh interpreter; JSON result or an
    "ERR ..." cell text."""
    spec = json.dumps({"kind": kind, "args": args})
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "run.py"), "--child", spec],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_child_env(),
        )
    except subprocess.TimeoutExpired:
        return f"ERR child timed out after {timeout:g} s"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [""])[-1]
        return f"ERR child rc={proc.returncode}: {tail[:60]}"
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------------ registry


def scenarios(p: Profile) -> list[Scenario]:
    ttl_rows = tuple(
        Row(
            f"4{'ab'[i]}",
            f"storm {p.s4_clients} thr, {p.s4_sleep_s:g}s check, "
            f"ttl={ttl:g}: check runs",
        )
        for i, ttl in enumerate(p.s4_ttls[:2])
    )
    return [
        Scenario("sleep5", "1", (Row("1", "5 checks x 0.1 s: 1 request"),), s1),
        Scenario("sleep20", "2", (Row("2", "20 checks x 0.1 s: 1 request"),), s2),
        Scenario(
            "trivial", "3",
            (Row("3", "20 trivial checks: per request", vs_bare=True),), s3,
        ),
        Scenario("storm", "4", ttl_rows, s4),
        Scenario(
            "hung", "5",
            (
                Row("5a", f"hung {p.s5_hang_s:g}s check, timeout "
                    f"{p.s5_timeout_s:g}s: response"),
                Row("5b", "threads before->after probes", better="", compare="none"),
            ),
            s5,
        ),
        Scenario(
            "waitress", "6",
            (Row("6", f"waitress {p.s6_server_threads} thr, {p.s6_clients} "
                 f"keep-alive clients, {p.s6_checks}x{p.s6_check_sleep_s:g}s "
                 f"checks, ttl={p.s6_cache_ttl:g}",
                 better="higher", vs_bare=True),),
            s6,
        ),
        Scenario(
            "memory", "7",
            (Row("7", f"tracemalloc growth {p.s7_first}->{p.s7_total} probes",
                 compare="diff", vs_bare=True),),
            s7,
            parallel=max(1, min(2, os.cpu_count() or 1)),
        ),
        Scenario(
            "hungready", "8",
            (
                Row("8a", f"gunicorn gthread 1x{p.s8_server_threads}, "
                    f"{p.s8_clients} clients on /livez, /readyz hung "
                    f"(timeout {p.s8_timeout_s:g}s): req/s vs healthy",
                    better="higher", compare="none"),
                Row("8b", "/livez p99, /readyz hung (healthy)", compare="none"),
                Row("8c", "unanswered requests, /readyz hung", compare="none"),
            ),
            s8,
        ),
    ]  # fmt: skip


# -------------------------------------------------------------------------- output


def render_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) for c, w in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def comparison_lines(
    row: Row, cells: dict[str, Cell], base: str, keys: list[str]
) -> list[str]:
    if row.compare == "none":
        return []
    base_cell = cells.get(base)
    if base_cell is None or base_cell.value is None:
        return []
    out: list[str] = []
    for other in keys:
        if other == base or (other == "bare" and not row.vs_bare):
            continue
        oc = cells.get(other)
        if oc is None or oc.value is None:
            continue
        if row.compare == "ratio":
            if oc.value == 0:
                continue
            out.append(f"{base} / {other} = {base_cell.value / oc.value:.2f}")
        else:
            out.append(f"{base} - {other} = {base_cell.value - oc.value:+.1f} KiB")
    if not out:
        return []
    hint = {"lower": " (lower is better)", "higher": " (higher is better)"}
    return [f"[{row.id}] " + "; ".join(out) + hint.get(row.better, "")]


# ---------------------------------------------------------------------------- main


def _run_cells(sc: Scenario, adapter: Adapter, ctx: Context) -> list[Cell]:
    t0 = time.perf_counter()
    try:
        cells = sc.fn(adapter, ctx)
    except Exception as exc:  # keep going: one broken adapter must not stop the run
        msg = f"ERR {type(exc).__name__}: {exc}"[:70]
        cells = [Cell(msg)] * len(sc.rows)
    elapsed = time.perf_counter() - t0
    log(
        f"[{sc.number}] {adapter.key:<15} {elapsed:6.2f} s  "
        + " | ".join(c.text for c in cells)
    )
    return cells


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Health-check extension benchmarks (127.0.0.1 only)."
    )
    parser.add_argument("--quick", action="store_true", help="shorter run (~40 s)")
    parser.add_argument(
        "--only",
        default="",
        help="comma list of scenarios by number or name: "
        "1|sleep5, 2|sleep20, 3|trivial, 4|storm, 5|hung, 6|waitress, 7|memory, "
        "8|hungready; ours alone: redaction, status-page, probe",
    )
    parser.add_argument(
        "--libs",
        default="",
        help="comma list of columns to run (ours, py-healthcheck, flask-healthz, bare)",
    )
    parser.add_argument(
        "--s5-budget",
        type=float,
        default=None,
        help="seconds per library for scenario 5's probes",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write results as JSON to this file",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only.strip().lower() == "redaction":  # ours only, no table
        print("\n".join(run_redaction()))
        return 0
    if args.only.strip().lower() == "status-page":  # ours only, no table
        print("\n".join(run_status_page()))
        return 0
    if args.only.strip().lower() == "probe":  # ours only, no table
        print("\n".join(run_probe()))
        return 0
    if args.child:  # internal: worker process for scenarios 5 and 7
        spec = json.loads(args.child)
        print(json.dumps(CHILD_KINDS[spec["kind"]](**spec["args"])))
        return 0
    profile = QUICK if args.quick else FULL
    if args.s5_budget is not None:
        profile = Profile(**{**asdict(profile), "s5_budget_s": args.s5_budget})
    all_scenarios = scenarios(profile)
    if args.only:
        wanted = {w.strip().lower() for w in args.only.split(",") if w.strip()}
        chosen = [s for s in all_scenarios if s.key in wanted or s.number in wanted]
        unknown = wanted - {s.key for s in chosen} - {s.number for s in chosen}
        if unknown:
            log(f"unknown scenario(s): {', '.join(sorted(unknown))}")
            return 2
    else:
        chosen = all_scenarios

    keys = [a.key for a in ALL_ADAPTERS]
    if args.libs:
        wanted_libs = {w.strip() for w in args.libs.split(",") if w.strip()}
        bad = wanted_libs - set(keys)
        if bad:
            log(f"unknown lib(s): {', '.join(sorted(bad))}")
            return 2
        keys = [k for k in keys if k in wanted_libs]

    missing: dict[str, str] = {}
    adapters: list[Adapter] = []
    for a in ALL_ADAPTERS:
        if a.key not in keys:
            continue
        err = adapter_import_error(a.key)
        if err is None:
            adapters.append(a)
        else:
            missing[a.key] = err

    ctx = Context(profile)
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]
    print(
        f"# health-check benchmarks ({profile.name}) - Python "
        f"{platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    for key in keys:
        a = next(x for x in ALL_ADAPTERS if x.key == key)
        ver = "not installed" if key in missing else a.version
        print(f"#   {key:<15} {a.dist} {ver}  (endpoint {a.path})")
    print()

    # Warm every adapter once (imports, first-request setup) and catch broken ones.
    broken: dict[str, str] = {}
    for a in adapters:
        try:
            app = a.build_app([trivial_check], timeout=None, cache_ttl=0.0)
            client = app.test_client()
            for _ in range(20):
                status, _ = timed_get(client, a.path)
            if status != 200:
                broken[a.key] = f"warm-up returned HTTP {status}"
        except Exception as exc:  # adapter/API mismatch: report, keep going
            broken[a.key] = f"{type(exc).__name__}: {exc}"

    results: dict[str, dict[str, Cell]] = {}
    for sc in chosen:
        runnable = [a for a in adapters if a.key not in broken]
        if sc.parallel <= 1:
            # One library at a time, in the main thread: in-process timings must
            # not overlap (and py-healthcheck's SIGALRM only works there).
            computed = {a.key: _run_cells(sc, a, ctx) for a in runnable}
        else:
            with ThreadPoolExecutor(max_workers=sc.parallel) as pool:
                futs = {a.key: pool.submit(_run_cells, sc, a, ctx) for a in runnable}
                computed = {k: f.result() for k, f in futs.items()}
        for row in sc.rows:
            results[row.id] = {}
        for key in keys:
            if key in missing:
                cells = [Cell("not installed")] * len(sc.rows)
            elif key in broken:
                cells = [Cell("ERR (warm-up)")] * len(sc.rows)
            else:
                cells = computed[key]
            for row, cell in zip(sc.rows, cells, strict=True):
                results[row.id][key] = cell

    header = ["scenario", *keys]
    table_rows = [
        [f"{row.id}. {row.title}", *(results[row.id][k].text for k in keys)]
        for sc in chosen
        for row in sc.rows
    ]
    print(render_table(header, table_rows))
    print()

    available = [k for k in keys if k not in missing and k not in broken]
    base = (
        "ours"
        if "ours" in available
        else next((k for k in available if k != "bare"), "")
    )
    if "ours" in keys and "ours" not in available:
        reason = missing.get("ours") or broken.get("ours", "")
        print(f"ours unavailable ({reason}); ratios use {base or 'nothing'} as base")
    for sc in chosen:
        for row in sc.rows:
            for line in comparison_lines(row, results[row.id], base, available):
                print(line)
    for key, reason in broken.items():
        print(f"note: {key} failed its warm-up: {reason}")
    if ctx.notes:
        print()
        print("notes:")
        for n in ctx.notes:
            print(f"  - {n}")
    if not args.only:
        print("\nredaction:\n  " + "\n  ".join(run_redaction()))
        print("\nstatus page:\n  " + "\n  ".join(run_status_page()))
        print("\nprobe and imports:\n  " + "\n  ".join(run_probe(runs=7, slow_runs=3)))
    total = time.perf_counter() - t_start
    load_end = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if max(load_start, load_end) > cpus:
        print(
            f"\nWARNING: load average {load_start:.1f} -> {load_end:.1f} on {cpus} "
            "CPUs: other work competed for the CPU; timings (3, 6) and probe counts "
            "(7) are pessimistic and noisy - rerun on an idle machine."
        )
    print(f"\ntotal {total:.1f} s")

    if args.json:
        payload = {
            "profile": asdict(profile),
            "versions": {
                a.key: (None if a.key in missing else a.version)
                for a in ALL_ADAPTERS
                if a.key in keys
            },
            "results": {
                rid: {k: asdict(c) for k, c in cells.items()}
                for rid, cells in results.items()
            },
            "notes": ctx.notes,
            "seconds": total,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
