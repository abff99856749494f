"""Two revisions of the package, measured in one run (issue 19: "the
benchmarks show no regression beyond noise, measured in one run").

    python benchmarks/compare.py REV_A REV_B            # 9 rounds, about 2.5 minutes
    python benchmarks/compare.py REV_A REV_B --quick    # 3 rounds, about 30 s
    python benchmarks/compare.py 'e20f437^1' main --only probe1,import

Each revision's ``flask_healthcheck/`` is exported with ``git archive``
into a temporary directory (removed at the end), its bytecode compiled
once into a cache of its own, as an installed package has it. Every
workload runs in a child process of this script with ``PYTHONPATH`` set
to one revision's tree (the child checks that it imported the package
from there), using only public API both revisions have: ``HealthCheck(app)``,
``add_check``, config keys and Flask's test client. Rounds alternate the
revisions: in each round every workload runs once for A and once for B,
back to back, A first in even rounds and B first in odd ones, so both see
the same load on a shared machine.

A round's figure is the median of its batch (one child per workload and
revision; for the imports, the median of 5 children, 3 with ``--quick``,
each timing one first import); the table gives the median over rounds of
each side, and the median of the per-round ratios B / A. The verdict is
"within noise" when the middle half of the per-round ratios (25th to
75th percentile) covers 1.0, or when the ratio is off 1.0 by less than
the rounds' relative spread (the larger of A's and B's interquartile
range over its median); otherwise "B slower" or "B faster". A verdict
"within noise (leans slower)" is the second case: the middle half of the
ratios is above 1.0 but by less than the rounds vary; rerun those
workloads with more ``--rounds``, or compare a revision with itself
(``REV REV``) to see what noise alone gives.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Seconds one child may take before the run gives up on it.
CHILD_TIMEOUT = 180.0


# --------------------------------------------------------------- the child
# Runs under ``PYTHONPATH=<a revision's tree>``; imports the package only
# inside the workloads, so the import workload starts from nothing.


def _trivial() -> bool:
    return True


def _package_file(root: Path) -> str:
    """The package's ``__file__``, after checking it is ``root``'s."""
    import flask_healthcheck

    found = Path(str(flask_healthcheck.__file__)).resolve()
    if not found.is_relative_to(root.resolve()):
        raise SystemExit(f"flask_healthcheck imported from {found}, not {root}")
    return str(found)


def _app(count: int, **config: Any) -> Any:
    """A Flask app with ``count`` trivial checks and ``config``."""
    from flask import Flask

    from flask_healthcheck import HealthCheck

    app = Flask(f"compare_{count}")
    app.config.update(config)
    health = HealthCheck(app)
    for i in range(count):
        health.add_check(_trivial, name=f"check_{i}")
    return app


def _probe_times(
    app: Any, requests: int, *, warm: int, url: str = "/health", html: bool = False
) -> list[float]:
    """Seconds per request of ``requests`` probes through the test client,
    after ``warm`` untimed ones."""
    client = app.test_client()
    headers = {"Accept": "text/html"} if html else {}
    times = []
    for i in range(warm + requests):
        start = time.perf_counter()
        response = client.get(url, headers=headers)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise SystemExit(f"{url}: status {response.status_code}")
        if html and not response.mimetype == "text/html":
            raise SystemExit(f"{url}: {response.mimetype}, not text/html")
        response.close()
        if i >= warm:
            times.append(elapsed)
    return times


def _probe(count: int, requests: int, **config: Any) -> dict[str, float]:
    app = _app(count, **config)
    times = _probe_times(app, requests, warm=max(3, requests // 10))
    return {"probe": statistics.median(times)}


def _page(count: int, requests: int, runs: int) -> dict[str, float]:
    # Without details the page shows the overall status alone, no checks.
    app = _app(count, HEALTHCHECK_SHOW_DETAILS=True)
    _probe_times(app, runs, warm=0)  # the history the page draws
    times = _probe_times(app, requests, warm=2, html=True)
    size = len(app.test_client().get("/health?format=html").get_data())
    return {"page": statistics.median(times), "page_bytes": float(size)}


def _imports() -> dict[str, float]:
    """First imports in this fresh child, timed in turn. This script's own
    standard-library imports come first, so ``import flask`` costs a little
    less than in a bare interpreter; the same for both revisions."""
    import importlib

    start = time.perf_counter()
    importlib.import_module("flask")
    flask_done = time.perf_counter()
    package = importlib.import_module("flask_healthcheck")
    package_done = time.perf_counter()
    package.HealthCheck  # noqa: B018 -- the lazy name's import, if lazy
    name_done = time.perf_counter()
    flask_s = flask_done - start
    return {
        "flask": flask_s,
        "package": package_done - flask_done,
        "name": name_done - package_done,
        "package_x": (package_done - flask_done) / flask_s,
        "name_x": (name_done - package_done) / flask_s,
    }


def _init_app(apps: int) -> dict[str, float]:
    from flask import Flask

    from flask_healthcheck import HealthCheck

    Flask("warm")  # Flask's own first-use costs, out of both figures
    HealthCheck(Flask("warm_too"))
    kept = []
    flask_times = []
    init_times = []
    for i in range(apps):
        start = time.perf_counter()
        app = Flask(f"app_{i}")
        made = time.perf_counter()
        HealthCheck(app)
        done = time.perf_counter()
        kept.append(app)  # no app freed (and collected) mid-measure
        flask_times.append(made - start)
        init_times.append(done - made)
    flask_s = statistics.median(flask_times)
    init_s = statistics.median(init_times)
    return {"init": init_s, "init_x": init_s / flask_s, "flask_app": flask_s}


def run_child(workload: str, root: Path, quick: bool) -> dict[str, Any]:
    """One workload's figures in this process (seconds, or ratios)."""
    figures = WORKLOADS[workload].run(quick)
    return {"file": _package_file(root), "figures": figures}


# ----------------------------------------------------------- the workloads


@dataclass
class Workload:
    name: str
    #: The workload's figures in a child (not for ``import``).
    run: Callable[[bool], dict[str, float]]
    #: Each table row: (figure key, label, unit: "s" or "x").
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    #: Children per round and revision, full and quick (the figure is
    #: their median).
    children: tuple[int, int] = (1, 1)


def _n(quick: bool, full: int, short: int) -> int:
    return short if quick else full


def _probe_workload(
    name: str, count: int, full: int, short: int, **config: Any
) -> Workload:
    label = f"/health, {count:,} trivial check{'s' if count > 1 else ''}"
    if config.get("HEALTHCHECK_CACHE_TTL"):
        label += ", cached"
    else:
        label += ", uncached"
    label += (
        ", inline" if config.get("HEALTHCHECK_THREADS") is False else ", pool threads"
    )
    return Workload(
        name,
        lambda quick: _probe(count, _n(quick, full, short), **config),
        [("probe", label, "s")],
    )


_UNCACHED = {"HEALTHCHECK_CACHE_TTL": 0}
_INLINE = {"HEALTHCHECK_CACHE_TTL": 0, "HEALTHCHECK_THREADS": False}

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        _probe_workload("probe1", 1, 600, 200, **_UNCACHED),
        _probe_workload("probe1_inline", 1, 600, 200, **_INLINE),
        _probe_workload("checks20", 20, 300, 100, **_UNCACHED),
        _probe_workload("checks20_inline", 20, 300, 100, **_INLINE),
        _probe_workload("checks1000", 1000, 30, 10, **_UNCACHED),
        _probe_workload("checks1000_inline", 1000, 30, 10, **_INLINE),
        # The default TTL is 0 (uncached): a TTL is the only change.
        _probe_workload("cached3", 3, 1000, 300, HEALTHCHECK_CACHE_TTL=3600),
        Workload(
            "page",
            lambda quick: _page(100, _n(quick, 20, 8), runs=60),
            [
                ("page", "status page (Accept: text/html), 100 checks, 60 runs", "s"),
                ("page_bytes", "its size (`?format=html`)", "B"),
            ],
        ),
        Workload(
            "import",
            lambda quick: _imports(),
            [
                ("flask", "`import flask` (the reference, same child)", "s"),
                ("package", "`import flask_healthcheck` after flask", "s"),
                ("name", "`from flask_healthcheck import HealthCheck` after it", "s"),
                ("package_x", "`import flask_healthcheck` / `import flask`", "x"),
                ("name_x", "`... import HealthCheck` / `import flask`", "x"),
            ],
            children=(5, 3),
        ),
        Workload(
            "init_app",
            lambda quick: _init_app(200),
            [
                ("init", "`HealthCheck(app)` per app (median of 200 apps)", "s"),
                ("init_x", "`HealthCheck(app)` / `Flask()`", "x"),
            ],
        ),
    )
}


# ---------------------------------------------------------------- the parent


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def export(rev: str, into: Path) -> str:
    """``rev``'s package exported into ``into``; its commit."""
    try:
        commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"{rev!r}: {error.stderr.strip()}") from None
    into.mkdir(parents=True)
    archive = subprocess.Popen(
        [
            "git",
            "-C",
            str(ROOT),
            "archive",
            "--format=tar",
            commit,
            "flask_healthcheck",
        ],
        stdout=subprocess.PIPE,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0:
        raise SystemExit(f"git archive {rev} failed")
    return commit


def child_env(root: Path, cache: Path) -> dict[str, str]:
    """``root`` first on the path, bytecode written to and read from
    ``cache`` (an export has none; without it, every child would compile)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONPYCACHEPREFIX": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def spawn(workload: str, root: Path, cache: Path, quick: bool) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", workload]
    argv += ["--root", str(root)] + (["--quick"] if quick else [])
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=child_env(root, cache),
        cwd=root,
        timeout=CHILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise SystemExit(f"{workload} under {root} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass
class Side:
    label: str
    rev: str
    commit: str
    root: Path
    cache: Path
    file: str = ""
    #: workload -> figure -> one value per round.
    figures: dict[str, dict[str, list[float]]] = field(default_factory=dict)


def measure(side: Side, workload: Workload, quick: bool) -> None:
    children = workload.children[1 if quick else 0]
    runs = [spawn(workload.name, side.root, side.cache, quick) for _ in range(children)]
    side.file = runs[0]["file"]
    for key, _, _ in workload.rows:
        value = statistics.median(run["figures"][key] for run in runs)
        side.figures.setdefault(workload.name, {}).setdefault(key, []).append(value)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def verdict(
    a: Sequence[float], b: Sequence[float]
) -> tuple[float, float, float, float, str]:
    """The median per-round ratio B / A, its quartiles, the rounds' relative
    spread, and the verdict."""
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    r1, ratio, r3 = quartiles(ratios)
    spread = 0.0
    for values in (a, b):
        q1, q2, q3 = quartiles(values)
        spread = max(spread, (q3 - q1) / q2)
    if len(ratios) < 3:
        word = "too few rounds to tell"
    elif r1 <= 1.0 <= r3:
        word = "within noise"
    elif abs(ratio - 1.0) < spread:
        # Paired rounds agree on a side, by less than the rounds vary.
        word = f"within noise (leans {'slower' if ratio > 1.0 else 'faster'})"
    else:
        word = "B slower" if ratio > 1.0 else "B faster"
    return ratio, r1, r3, spread, word


def shown(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.3g} x"
    if unit == "B":
        return f"{value / 1e3:,.1f} kB"
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


def table(a: Side, b: Side, names: Sequence[str]) -> str:
    lines = [
        "| workload | A | B | B / A | B / A, middle half of rounds"
        " | spread of rounds (IQR / median) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for key, label, unit in WORKLOADS[name].rows:
            xs, ys = a.figures[name][key], b.figures[name][key]
            ratio, r1, r3, spread, word = verdict(xs, ys)
            if unit == "B":  # a size, not a speed
                word = "same" if abs(ratio - 1.0) < 0.005 else "differs"
            lines.append(
                f"| {label} | {shown(statistics.median(xs), unit)}"
                f" | {shown(statistics.median(ys), unit)} | {ratio:.3f}"
                f" | {r1:.3f} – {r3:.3f} | {spread * 100:.1f} % | {word} |"
            )
    return "\n".join(lines)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev_a", nargs="?")
    parser.add_argument("rev_b", nargs="?")
    parser.add_argument(
        "--quick", action="store_true", help="3 rounds, smaller batches"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 9, quick 3)")
    parser.add_argument(
        "--only", help="comma-separated workloads: " + ",".join(WORKLOADS)
    )
    parser.add_argument(
        "--json", type=Path, help="also write every round's figures to this file"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_child(args.child, args.root, args.quick)
        print(json.dumps(result))
        return
    if not (args.rev_a and args.rev_b):
        parser.error("REV_A and REV_B are required")
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = set(names) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    rounds = args.rounds or (3 if args.quick else 9)

    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load()}")
    began = time.monotonic()
    temp = Path(tempfile.mkdtemp(prefix="compare-"))
    try:
        sides = []
        for label, rev in (("A", args.rev_a), ("B", args.rev_b)):
            root = temp / label / "tree"
            commit = export(rev, root)
            cache = temp / label / "pycache"
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(root)],
                env=child_env(root, cache),
                check=True,
            )
            sides.append(Side(label, rev, commit, root, cache))
            subject = _git("log", "-1", "--format=%h %s", commit)
            print(f"{label} = {rev} = {commit[:12]} ({subject[:70]})")
        a, b = sides
        for side in sides:  # a discarded warm-up: disk cache, first imports
            spawn("import", side.root, side.cache, args.quick)
        for i in range(rounds):
            order = (a, b) if i % 2 == 0 else (b, a)
            for name in names:
                for side in order:
                    measure(side, WORKLOADS[name], args.quick)
            print(
                f"round {i + 1}/{rounds} done,"
                f" {time.monotonic() - began:.0f} s, {load()}"
            )
        for side in sides:
            print(f"{side.label} imported flask_healthcheck from {side.file}")
        if args.json:
            raw = {
                s.label: {"rev": s.rev, "commit": s.commit, "figures": s.figures}
                for s in sides
            }
            args.json.write_text(json.dumps(raw, indent=1))
        print()
        print(table(a, b, names))
        print()
        print(
            f"{rounds} rounds, {time.monotonic() - began:.0f} s; end:"
            f" {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load()}"
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
