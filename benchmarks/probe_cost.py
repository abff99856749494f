"""What a health probe costs: the import of the package, and a Docker
``HEALTHCHECK`` command run against the example app.

    python benchmarks/probe_cost.py                  # about 40 s
    python benchmarks/probe_cost.py --runs 5         # quicker, noisier
    python benchmarks/probe_cost.py --root /other/checkout  # "before" figures
    python benchmarks/run.py --only probe            # the same, from run.py

Everything is measured in the same run, interleaved, and printed against
its baseline:

- imports (``python -X importtime``, the sum of the top-level imports of
  the statement, median of ``--runs``, with the bytecode compiled once
  into a temporary cache first, as an installed package has it): ``import
  flask_healthcheck`` and ``from flask_healthcheck import HealthCheck``
  (what an app pays) against ``import flask``;
- ``init_app``: ``Flask()`` then ``HealthCheck(app)`` against ``Flask()``
  alone, per call (median of interleaved calls in one interpreter), for a
  bare app and for one with six URL rules;
- commands, wall time and CPU (user + system) per call, median: ``python
  -m flask_healthcheck.probe URL`` against ``python -c pass`` (the goal: at
  most 150 ms over it), ``flask --app example_app health`` and ``curl``,
  the last three asking the example app's ``/readyz`` served by waitress
  on 127.0.0.1 (a free port), its database a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The most ``python -m flask_healthcheck.probe`` may cost over ``python -c pass``.
TARGET_OVER_PASS_MS = 150.0
#: The most ``import flask_healthcheck`` may cost against ``import flask``.
TARGET_IMPORT_RATIO = 1.2
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)")
_MARK = "@@benchmark@@"


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), **extra}


def _bytecode_env(root: Path, cache: Path) -> dict[str, str]:
    """Bytecode written to and read from ``cache``, as an installed package
    has it: with ``PYTHONDONTWRITEBYTECODE`` set, a checkout's modules would
    be compiled on every import while Flask's come compiled."""
    env = _env(root, PYTHONPYCACHEPREFIX=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def import_ms(statement: str, root: Path, cache: Path) -> float:
    """Milliseconds of the imports ``statement`` makes in a fresh interpreter
    (the interpreter's own start-up imports left out), bytecode in ``cache``."""
    code = f"import sys; sys.stderr.write({_MARK!r} + '\\n'); {statement}"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_bytecode_env(root, cache),
        cwd=root,  # -c puts the working directory first on sys.path
        timeout=60,
        check=True,
    )
    log = done.stderr.split(_MARK, 1)[1]
    total = 0
    for match in _IMPORT_LINE.finditer(log):
        if len(match.group(3)) == 1:  # a top-level import of the statement
            total += int(match.group(2))
    return total / 1000


def command_cost(
    argv: Sequence[str], env: dict[str, str], cwd: Path
) -> tuple[float, float, int]:
    """Wall and CPU (user + system, the child's) milliseconds, exit status.

    Waited for with a blocking ``wait4``: ``subprocess.run(timeout=...)``
    polls with growing sleeps, which rounds every wall time up to its
    step. A timer kills a command stuck for two minutes."""
    start = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd
    )
    timer = threading.Timer(120, process.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall * 1000, cpu * 1000, process.returncode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def example_server(root: Path, env: dict[str, str]) -> Iterator[str]:
    """The example app under waitress on 127.0.0.1; its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{port}",
            "--threads=4",
            "--call",
            "example_app:create_app",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the example app did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def imports(root: Path, runs: int) -> list[str]:
    statements = {
        "import flask": "import flask",
        "import flask_healthcheck": "import flask_healthcheck",
        "from flask_healthcheck import HealthCheck": (
            "from flask_healthcheck import HealthCheck"
        ),
        # What init_app imports on first use (contrib) counted too.
        "... and HealthCheck(Flask('app'))": (
            "from flask import Flask; from flask_healthcheck import HealthCheck;"
            " HealthCheck(Flask('app'))"
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    with tempfile.TemporaryDirectory() as cache:
        for statement in statements.values():  # compiles, not measured
            import_ms(statement, root, Path(cache))
        for _ in range(runs):
            for name, statement in statements.items():
                times[name].append(import_ms(statement, root, Path(cache)))
    flask = _median(times["import flask"])
    lines = []
    for name, values in times.items():
        ms = _median(values)
        lines.append(f"{name:<42} {ms:8.1f} ms  {ms / flask:5.2f} x import flask")
    app_pays = _median(times["from flask_healthcheck import HealthCheck"]) - flask
    lines.append(
        f"HealthCheck over import flask: {app_pays:.1f} ms"
        " (what an app pays for the extension's own modules)"
    )
    package = _median(times["import flask_healthcheck"]) / flask
    verdict = "ok" if package <= TARGET_IMPORT_RATIO else "OVER TARGET"
    lines.append(
        f"import flask_healthcheck: {package:.2f} x import flask"
        f" (target <= {TARGET_IMPORT_RATIO:g}: {verdict})"
    )
    return lines


#: The most ``HealthCheck(app)`` may add to ``Flask()`` (idle machine).
TARGET_INIT_APP_MS = 1.0
#: Run in a fresh interpreter of the checkout measured: per call, the wall
#: milliseconds of ``Flask()`` alone and with ``HealthCheck(app)``, for a
#: bare app and one with six URL rules, interleaved, one line of JSON.
_INIT_APP_CODE = """
import json, sys, time
from flask import Flask
from flask_healthcheck import HealthCheck

def app_with(rules):
    app = Flask("bench")
    for number in range(rules):
        app.add_url_rule(f"/page{number}/<int:item>", f"page{number}", lambda item: "")
    return app

def one(rules, extension):
    start = time.perf_counter()
    app = app_with(rules)
    if extension:
        HealthCheck(app)
    return (time.perf_counter() - start) * 1000

rounds = int(sys.argv[1])
for rules in (0, 6):  # warm up: first calls import and compile
    one(rules, True)
times = {f"{r},{e}": [] for r in (0, 6) for e in (0, 1)}
for _ in range(rounds):
    for key, values in times.items():
        rules, extension = map(int, key.split(","))
        values.append(one(rules, bool(extension)))
print(json.dumps(times))
"""


def init_app_cost(root: Path, rounds: int) -> list[str]:
    """What ``HealthCheck(app)`` adds to ``Flask()`` per call, median of
    ``rounds`` interleaved calls (a test suite that builds an app per test
    pays it each time)."""
    done = subprocess.run(
        [sys.executable, "-c", _INIT_APP_CODE, str(rounds)],
        capture_output=True,
        text=True,
        env=_env(root),
        cwd=root,
        timeout=300,
        check=True,
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    lines = []
    for rules, label in ((0, "Flask()"), (6, "Flask() + 6 URL rules")):
        bare = _median(times[f"{rules},0"])
        with_extension = _median(times[f"{rules},1"])
        over = with_extension - bare
        verdict = "ok" if over <= TARGET_INIT_APP_MS else "OVER TARGET"
        lines.append(
            f"{label:<24} {bare:7.3f} ms; + HealthCheck(app) {with_extension:7.3f} ms:"
            f" {over:+.3f} ms (target <= {TARGET_INIT_APP_MS:g} ms idle: {verdict})"
        )
    return lines


def commands(root: Path, runs: int, slow_runs: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(
            root,
            DATABASE_URL=f"sqlite:///{Path(tmp) / 'example.db'}",
            FLASK_APP="example_app",
        )
        with example_server(root, env) as base:
            url = f"{base}/readyz"
            rows: dict[str, tuple[list[str], int]] = {
                "python -c pass": ([sys.executable, "-c", "pass"], runs),
                "python -m flask_healthcheck.probe URL": (
                    [sys.executable, "-m", "flask_healthcheck.probe", url],
                    runs,
                ),
                "flask --app example_app health": (
                    [sys.executable, "-m", "flask", "--app", "example_app", "health"],
                    slow_runs,
                ),
            }
            curl = shutil.which("curl")
            if curl is not None:
                rows["curl -sf URL"] = ([curl, "-sf", "-o", "/dev/null", url], runs)
            if not (root / "flask_healthcheck" / "probe.py").exists():
                del rows["python -m flask_healthcheck.probe URL"]
            walls: dict[str, list[float]] = {name: [] for name in rows}
            cpus: dict[str, list[float]] = {name: [] for name in rows}
            statuses: dict[str, set[int]] = {name: set() for name in rows}
            for number in range(runs):
                for name, (argv, count) in rows.items():
                    if number >= count:
                        continue
                    wall_ms, cpu_ms, status = command_cost(argv, env, root)
                    walls[name].append(wall_ms)
                    cpus[name].append(cpu_ms)
                    statuses[name].add(status)
    wall = {name: _median(values) for name, values in walls.items()}
    cpu = {name: _median(values) for name, values in cpus.items()}
    lines = [
        f"{name:<42} {wall[name]:8.1f} ms wall {cpu[name]:8.1f} ms CPU"
        f"  (n={len(walls[name])}, exit {sorted(statuses[name])})"
        for name in rows
    ]
    probe = "python -m flask_healthcheck.probe URL"
    if probe in wall:
        over = wall[probe] - wall["python -c pass"]
        verdict = "ok" if over <= TARGET_OVER_PASS_MS else "OVER TARGET"
        lines.append(
            f"probe - python -c pass = {over:.1f} ms wall"
            f" (target <= {TARGET_OVER_PASS_MS:g} ms: {verdict})"
        )
        health = "flask --app example_app health"
        lines.append(
            f"flask health / probe = {wall[health] / wall[probe]:.1f} x wall,"
            f" {cpu[health] / cpu[probe]:.1f} x CPU"
        )
        if "curl -sf URL" in wall:
            lines.append(
                f"probe / curl = {wall[probe] / wall['curl -sf URL']:.1f} x wall"
            )
    return lines


def run(root: Path = HERE.parent, runs: int = 15, slow_runs: int = 5) -> list[str]:
    """Every figure, as lines; ``root`` is the checkout measured."""
    steps: list[Callable[[], list[str]]] = [
        lambda: imports(root, runs),
        lambda: init_app_cost(root, max(runs, 15) * 20),
        lambda: commands(root, runs, slow_runs),
    ]
    load = os.getloadavg()[0]
    python = sys.version.split()[0]
    lines = [f"{os.cpu_count()} CPUs, Python {python}, load average {load:.2f}"]
    for step in steps:
        lines += step()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument(
        "--runs", type=int, default=15, help="runs per figure (default 15)"
    )
    parser.add_argument(
        "--slow-runs", type=int, default=5, help="runs of flask health (default 5)"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=HERE.parent,
        help="the checkout to measure (its flask_healthcheck and example_app)",
    )
    args = parser.parse_args(argv)
    print("\n".join(run(args.root.resolve(), args.runs, args.slow_runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
