"""The status page of an app with 1,000 checks, each with a full history.

    python benchmarks/page.py   # or: run.py --only status-page

Prints the page's size and the time to render it (median of a few renders,
the report and the history snapshot made beforehand), against the targets
of 1 MB and 200 ms. The history is the worst case for size: every check
holds the most results the history keeps, flapping between pass, warn and
fail, so no two neighbouring cells merge.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from flask_healthcheck.checks import CheckResult, HealthReport, Status  # noqa: E402
from flask_healthcheck.history import MAX_RESULTS, History  # noqa: E402
from flask_healthcheck.status_page import render_status_page  # noqa: E402

#: Targets for 1,000 checks.
TARGET_BYTES = 1_000_000
TARGET_MS = 200.0
STATUSES: tuple[Status, ...] = ("pass", "fail", "warn")


def worst_case(
    checks: int = 1000, runs: int = MAX_RESULTS
) -> tuple[HealthReport, History]:
    """A report of ``checks`` checks and a full, flapping history of each."""
    now = [1_700_000_000.0]
    history = History(clock=lambda: now[0])
    names = [f"dependency_{i:04d}" for i in range(checks)]
    for run in range(runs):
        now[0] += 10
        for i, name in enumerate(names):
            status = STATUSES[(run + i) % 3]
            history.record(
                CheckResult(name=name, status=status, duration=0.001 * (run % 7))
            )
        history.record_overall(STATUSES[run % 3])
    results = [
        CheckResult(
            name=name,
            status="fail" if i % 10 == 0 else "pass",
            duration=0.0042,
            error="ConnectionError: connection refused" if i % 10 == 0 else None,
        )
        for i, name in enumerate(names)
    ]
    return HealthReport.from_results(results), history


def run(checks: int = 1000, repeat: int = 5) -> list[str]:
    report, history = worst_case(checks)
    snapshot = history.snapshot([result.name for result in report.checks])
    times = []
    page = ""
    for _ in range(repeat):
        start = time.perf_counter()
        page = render_status_page(report, details=True, refresh=10, history=snapshot)
        times.append(time.perf_counter() - start)
    size = len(page.encode())
    ms = statistics.median(times) * 1000
    size_ok = "ok" if size <= TARGET_BYTES else "OVER TARGET"
    time_ok = "ok" if ms <= TARGET_MS else "OVER TARGET"
    return [
        f"{checks} checks x {MAX_RESULTS} results each: page {size / 1e6:.2f} MB"
        f" (target <= {TARGET_BYTES / 1e6:g} MB: {size_ok}, ratio"
        f" {size / TARGET_BYTES:.2f})",
        f"rendered in {ms:.1f} ms, median of {repeat} (target <= {TARGET_MS:g} ms:"
        f" {time_ok}, ratio {ms / TARGET_MS:.2f})",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
