"""The least a probe of trivial checks can cost, next to what ours costs
and flask-healthz, all in one run (issue 20's per-check goals).

    python benchmarks/floor.py            # about 1 minute
    python benchmarks/floor.py --quick

"Floor" is a Flask route written for nothing but speed that still gives
each check what DESIGN promises it: called in the app context with the
app's teardown and a fresh ``g`` after it, a ``BaseException`` caught, a
result (status, duration, start time, and the result's other fields),
the check's latest result kept, and one history entry (time, duration and
status in arrays, at most 360 kept). It has no lock, no deadline, no
signals, no logs, no cache and no check selection: a real extension needs
each of them, so no implementation can be faster. "Floor, no teardown"
also skips the teardown and the fresh ``g``, which DESIGN requires, to
show what they cost.

"Floor, threaded" runs the same loop on one other thread, handed the
checks and waited for with a deadline through two locks: the least a
hand-off can be when checks must run on a thread of their own so that
their timeouts are enforced (no spinning: a library must not burn a CPU
while it waits).

The goals compared are issue 20's: at most 1.2 x flask-healthz with
``HEALTHCHECK_THREADS = False`` and 2.0 x with threads (20 checks), and at
most 5 x at 1,000 checks.
"""

from __future__ import annotations

import _thread
import argparse
import statistics
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.globals import _cv_app

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from scale import (  # noqa: E402 - benchmarks/ is sys.path[0]
    COLUMNS,
    Column,
    measure,
    render,
    trivial_check,
)

SIZES = (1, 20, 1000)
#: Entries a check's history keeps, as the extension's default.
HISTORY = 360
#: The seed's envelope, as ours answers.
ENVELOPE: dict[str, object] = {
    "status": "success",
    "error": "",
    "data": {},
    "pagination": {},
    "input_errors": {},
}


class Result:
    """A check's result, a field each as the extension's has."""


class Series:
    __slots__ = ("times", "durations", "statuses")

    def __init__(self) -> None:
        self.times = array("d")
        self.durations = array("d")
        self.statuses = bytearray()


def build_floor(count: int, *, teardown: bool = True, threaded: bool = False) -> Flask:
    app = Flask(f"floor_{count}_{teardown}_{threaded}")
    checks = [(f"check_{i}", trivial_check) for i in range(count)]
    latest: dict[str, Result] = {}
    history = {name: Series() for name, _ in checks}
    perf = time.perf_counter

    def run() -> None:
        wall = time.time() - perf()
        context = _cv_app.get()
        for name, func in checks:
            start = perf()
            try:
                value = func()
            except BaseException:  # noqa: BLE001 - as a check's would be
                value = False
            if teardown:
                app.do_teardown_appcontext(None)
                context.g = app.app_ctx_globals_class()
            duration = perf() - start
            result = object.__new__(Result)
            result.__dict__ = {
                "name": name,
                "status": "pass" if value is True else "fail",
                "duration": duration,
                "error": None,
                "observed_value": None,
                "observed_unit": None,
                "tags": (),
                "critical": True,
                "started_at": wall + start,
            }
            latest[name] = result
            series = history[name]
            series.times.append(wall + start)
            series.durations.append(duration)
            series.statuses.append(112)
            if len(series.statuses) > HISTORY:
                del series.times[:1], series.durations[:1], series.statuses[:1]

    if threaded:
        run = _on_a_thread(app, run)

    @app.get("/health")
    def health() -> dict[str, object]:
        run()
        return ENVELOPE

    return app


def _on_a_thread(app: Flask, run: Callable[[], None]) -> Callable[[], None]:
    """``run`` on one long-lived thread in an app context of its own
    (pushed once, as the extension's pool threads do): one lock wakes it,
    another wakes the caller, who waits with a deadline."""
    go, done = _thread.allocate_lock(), _thread.allocate_lock()
    go.acquire()
    done.acquire()

    def worker() -> None:
        app.app_context().push()
        while go.acquire(True, 60):
            run()
            done.release()

    _thread.start_new_thread(worker, ())

    def handed_off() -> None:
        go.release()
        if not done.acquire(True, 5):
            raise TimeoutError("the floor's thread did not answer")

    return handed_off


FLOORS = (
    Column("floor", "/health", lambda n: build_floor(n)),
    Column("floor, threaded", "/health", lambda n: build_floor(n, threaded=True)),
    Column("floor, no teardown", "/health", lambda n: build_floor(n, teardown=False)),
)
#: Ours threaded and inline, flask-healthz and the bare route (scale.py).
OTHERS = tuple(COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="default 3, quick 1")
    args = parser.parse_args()
    budget, most = (0.4, 300) if args.quick else (1.5, 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    columns = (*OTHERS, *FLOORS)
    # Per round: each probe's median as a ratio to flask-healthz's, and in ms.
    ratios: dict[tuple[str, int], list[float]] = {}
    times: dict[tuple[str, int], list[float]] = {}
    for number in range(rounds):
        for count in SIZES:  # each row's columns together: the same load
            ms = {c.key: measure(c, count, budget, most).median_ms for c in columns}
            for key, value in ms.items():
                ratios.setdefault((key, count), []).append(value / ms["flask-healthz"])
                times.setdefault((key, count), []).append(value)
            print(f"  round {number + 1}, {count:>5} checks done", file=sys.stderr)
    ratio = {key: statistics.median(values) for key, values in ratios.items()}
    median_ms = {key: statistics.median(values) for key, values in times.items()}
    header = ["checks", *(c.key for c in columns)]
    rows = [[f"{n:,}", *(f"{ratio[c.key, n]:.2f}" for c in columns)] for n in SIZES]
    print(
        "Each probe's median time as a ratio to flask-healthz's in the same"
        f" round, median of {rounds} round(s):"
    )
    print(render(header, rows))
    print()
    goals = (
        ("20 checks, threaded", 20, "ours", "floor, threaded", 2.0),
        ("20 checks, inline", 20, "ours inline", "floor", 1.2),
        ("1,000 checks, threaded", 1000, "ours", "floor, threaded", 5.0),
        ("1,000 checks, inline", 1000, "ours inline", "floor", 5.0),
    )
    for label, n, ours, floor, goal in goals:
        print(
            f"{label}: goal {goal} x; ours {ratio[ours, n]:.2f} x;"
            f" the floor {ratio[floor, n]:.2f} x"
            f" ({'reachable' if ratio[floor, n] <= goal else 'out of reach'})"
        )
    for key in ("floor", "floor, no teardown", "ours inline", "ours"):
        first, last = median_ms[key, SIZES[0]], median_ms[key, SIZES[-1]]
        per_check = (last - first) / (SIZES[-1] - SIZES[0]) * 1000
        print(f"{key}: {per_check:.2f} us per check from 1 to 1,000")


if __name__ == "__main__":
    main()
