"""Where a probe of trivial checks spends its time (issue 20): cProfile over
many probes of 20 uncached trivial checks, threaded and inline, the pool
threads included (each runs its own profiler for the benchmark's length).

    python benchmarks/profile_checks.py                  # 5,000 probes each
    python benchmarks/profile_checks.py --probes 1000 --top 40

Prints, per mode, the time per probe under the profiler, a breakdown by
part (Flask and Werkzeug, the runner's bookkeeping by module, the checks
themselves) and the functions with the most time of their own. Times under
cProfile are inflated (every call is counted): read the shares, and
measure speed with ``scale.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from flask import Flask

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scale import build_ours  # noqa: E402 - benchmarks/ is sys.path[0]

from flask_healthcheck.scheduler import Scheduler  # noqa: E402

CHECKS = 20


def build(threads: bool, checks: int = CHECKS) -> Flask:
    return build_ours(checks, threads=threads)


#: One profiler per pool thread, made when the thread first drains a batch.
_profilers: dict[int, cProfile.Profile] = {}
_lock = threading.Lock()


def _profiled_drain(original: Callable[..., None]) -> Callable[..., None]:
    """``Scheduler._drain`` under this thread's own profiler."""

    def drain(self: Scheduler, batch: object, run: object) -> None:
        ident = threading.get_ident()
        with _lock:
            profiler = _profilers.get(ident)
            if profiler is None:
                profiler = _profilers[ident] = cProfile.Profile()
        profiler.enable()
        try:
            original(self, batch, run)
        finally:
            profiler.disable()

    return drain


#: Steps of a check's run: (the end of the file's path, function),
#: cumulative time per check.
STEPS = {
    "the executor's loop: each check, its result, its hand-over": (
        "flask_healthcheck/executor.py",
        "_execute_in_context",
    ),
    "  scope.call_plain (no parameters: the thread's scope; the check)": (
        "flask_healthcheck/services.py",
        "call_plain",
    ),
    "    inspect.isawaitable": ("inspect.py", "isawaitable"),
    "  the app's teardown (Flask's do_teardown_appcontext)": (
        "flask/app.py",
        "do_teardown_appcontext",
    ),
    "  interpret": ("flask_healthcheck/checks.py", "interpret"),
    "  _completed (the result)": ("flask_healthcheck/executor.py", "_completed"),
    "  runner._finish (lock, latest, settle)": (
        "flask_healthcheck/runner.py",
        "_finish",
    ),
    "    recorder.settle": ("flask_healthcheck/recorder.py", "settle"),
    "recorder.flush (history, signals, logs, overall status)": (
        "flask_healthcheck/recorder.py",
        "flush",
    ),
    "  history.record_many": ("flask_healthcheck/history.py", "record_many"),
    "    series.add": ("flask_healthcheck/series.py", "add"),
    "runner.run, all of it (per probe, shared out)": (
        "flask_healthcheck/runner.py",
        "run",
    ),
}


def part(key: tuple[str, int, str]) -> str:
    """The part of the code a function belongs to."""
    filename, _, name = key
    if "flask_healthcheck" in filename:
        module = Path(filename).stem
        return f"flask_healthcheck.{module}"
    if "/flask/" in filename or "/werkzeug/" in filename:
        return "flask + werkzeug"
    if "/blinker/" in filename:
        return "blinker"
    if "profile_checks" in filename:
        return "the checks (and this script)"
    if filename == "~":
        if "lock" in name or "acquire" in name or "release" in name:
            return "locks (C)"
        if "time" in name or "perf_counter" in name or "monotonic" in name:
            return "clocks (C)"
        if "contextvars" in name or "Context" in name or "ContextVar" in name:
            return "contextvars (C)"
        return "other builtins (C)"
    return "other Python (" + Path(filename).name + ")"


def profile(threads: bool, probes: int, top: int, checks: int = CHECKS) -> None:
    app = build(threads, checks)
    client = app.test_client()
    for _ in range(20):
        assert client.get("/health").status_code == 200
    _profilers.clear()
    main = cProfile.Profile()
    start = time.perf_counter()
    main.enable()
    for _ in range(probes):
        client.get("/health").close()
    main.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(main)
    for profiler in _profilers.values():
        stats.add(profiler)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    by_part: dict[str, float] = defaultdict(float)
    for key, (_, _, tt, _, _) in raw.items():
        by_part[part(key)] += tt
    mode = "threaded" if threads else "inline (HEALTHCHECK_THREADS = False)"
    print(f"\n## {mode}: {probes:,} probes of {checks} trivial checks")
    print(
        f"wall under the profiler: {wall / probes * 1e6:.0f} us per probe;"
        f" profiled time (all threads): {total / probes * 1e6:.0f} us per probe,"
        f" {total / probes / checks * 1e6:.1f} us per check"
        f" ({len(_profilers)} pool thread(s) profiled)"
    )
    print("\n| part | us per probe | share |")
    print("|---|---|---|")
    for name, seconds in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {seconds / probes * 1e6:.1f} | {seconds / total:.1%} |")
    print("\nsteps of one check (cumulative, us per check):")
    for step, (path, function) in STEPS.items():
        cumulative = sum(
            ct
            for (filename, _, name), (_, _, _, ct, _) in raw.items()
            if name == function and filename.endswith(path)
        )
        print(f"  {cumulative / probes / checks * 1e6:6.2f}  {step}")
    print(f"\nfunctions by own time (top {top}), us per probe:")
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, name), (_, calls, tt, ct, _) in rows:
        where = f"{Path(filename).name}:{line}" if filename != "~" else ""
        print(
            f"  {tt / probes * 1e6:7.2f} own {ct / probes * 1e6:8.2f} cum"
            f" {calls / probes:6.1f} calls  {name} {where}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=5000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", choices=("threaded", "inline"), default=None)
    parser.add_argument("--checks", type=int, default=CHECKS)
    args = parser.parse_args(argv)
    Scheduler._drain = _profiled_drain(Scheduler._drain)  # type: ignore[method-assign]
    if args.only in (None, "threaded"):
        profile(True, args.probes, args.top, args.checks)
    if args.only in (None, "inline"):
        profile(False, args.probes, args.top, args.checks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
