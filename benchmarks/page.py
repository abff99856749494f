"""The status page and the history at scale: 100 and 1,000 checks, each
with a full history.

    python benchmarks/page.py   # or: run.py --only status-page

Prints each figure against its goal and, where one makes sense, against a
baseline measured in the same run:

- history memory: bytes per check once every series is full (tracemalloc
  while the history fills), against the layout the history had before it
  kept columns (a deque of ``Entry`` tuples and a deque of monotonic
  ticks per series, rebuilt here) and the goal of 8 KB;
- the status page, with details: its size, and its time both as the
  page's own work (the history snapshot and the render, what a request
  adds to the checks' run) and as a whole request through Flask's test
  client with every result cached; the baseline is a bare Flask route
  rendering a trivial Jinja template of the same rows (name, status,
  duration, time: the page without its history), requested the same way;
  the goals are 1 MB and 200 ms at 1,000 checks;
- ``<url>/history`` with details: size and time of a whole request; the
  baseline is a bare Flask route answering ``json.dumps`` of as many
  results per check as the document shows (time, status, duration), made
  from plain tuples.

The history is the worst case for size: every check holds the most results
the history keeps, flapping between pass, fail and warn so that no two
neighbouring cells merge. Times are medians of a few runs; on a shared
2-core VM they vary by a third from run to run, the ratios less.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from flask import Flask, render_template_string  # noqa: E402

from flask_healthcheck import HealthCheck  # noqa: E402
from flask_healthcheck.checks import CheckResult, HealthReport, Status  # noqa: E402
from flask_healthcheck.history import (  # noqa: E402
    MAX_RESULTS,
    Entry,
    History,
    series_limit,
)
from flask_healthcheck.state import get_state  # noqa: E402
from flask_healthcheck.status_page import render_status_page  # noqa: E402

#: Goals (the page's and the document's at 1,000 checks).
GOAL_BYTES = 1_000_000
GOAL_MS = 200.0
GOAL_BYTES_PER_CHECK = 8_000
STATUSES: tuple[Status, ...] = ("pass", "fail", "warn")
HTML = {"Accept": "text/html"}
#: The baseline page: the same rows, no history.
BARE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Health</title></head><body><table>
{%- for row in rows %}
<tr><td>{{ row.name }}</td><td>{{ row.status }}</td><td>{{ row.duration }}</td>
<td>{{ row.time }}</td></tr>
{%- endfor %}
</table></body></html>"""


def names(checks: int) -> list[str]:
    return [f"dependency_{i:04d}" for i in range(checks)]


def fill(history: History, clock: list[float], checks: int) -> None:
    """Record a full, flapping history of ``checks`` checks."""
    # 21 results per check cover every (status, duration) pair used, made
    # beforehand so that what is measured is the history alone.
    variants = [
        [
            CheckResult(name=name, status=STATUSES[(k + i) % 3], duration=0.001 * k)
            for k in range(21)
        ]
        for i, name in enumerate(names(checks))
    ]
    for run in range(MAX_RESULTS):
        clock[0] += 10
        for results in variants:
            history.record(results[run % 21])
        history.record_overall(STATUSES[run % 3])


class OldSeries:
    """A series as the history kept one before it kept columns."""

    def __init__(self) -> None:
        self.entries: deque[Entry] = deque(maxlen=MAX_RESULTS)
        self.ticks: deque[float] = deque(maxlen=MAX_RESULTS)

    def add(self, entry: Entry, tick: float) -> None:
        self.entries.append(entry)
        self.ticks.append(tick)


def traced(build: Callable[[], object]) -> tuple[int, float]:
    """The bytes ``build`` leaves allocated (what it returns is kept), and
    the time of a full garbage collection while it is kept, in ms: every
    object the history keeps is one more for each collection to visit."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    collect_ms, _ = median_ms(gc.collect, 3)
    del kept
    return after - before, collect_ms


def memory(checks: int = 1000) -> list[str]:
    clock = [1_700_000_000.0]
    # A new float per reading, as time.time() and time.monotonic() give.
    history = History(clock=lambda: clock[0] + 0.0)
    # Made before tracing: the results' names and floats belong to them.
    results = [
        [
            CheckResult(name=name, status=STATUSES[(k + i) % 3], duration=0.001 * k)
            for k in range(21)
        ]
        for i, name in enumerate(names(checks))
    ]

    def new() -> History:
        for run in range(MAX_RESULTS):
            clock[0] += 10
            for variants in results:
                history.record(variants[run % 21])
            history.record_overall(STATUSES[run % 3])
        return history

    def old() -> dict[str, OldSeries]:
        series = {name: OldSeries() for name in names(checks)}
        for run in range(MAX_RESULTS):
            clock[0] += 10
            for variants in results:
                result = variants[run % 21]
                # What History.record made per result: an entry of new
                # floats (the clock's, the duration's) and a tick.
                entry = Entry(clock[0] + 0.0, result.status, result.duration + 0.0)
                series[result.name].add(entry, time.monotonic())
        return series

    ours_bytes, ours_gc = traced(new)
    baseline_bytes, baseline_gc = traced(old)
    ours, baseline = ours_bytes / checks, baseline_bytes / checks
    return [
        f"history memory, {checks} checks x {MAX_RESULTS} results:"
        f" {ours:,.0f} B per check (goal <= {GOAL_BYTES_PER_CHECK:,}:"
        f" {verdict(ours, GOAL_BYTES_PER_CHECK)}, ratio"
        f" {ours / GOAL_BYTES_PER_CHECK:.2f}); the entry-tuple layout"
        f" {baseline:,.0f} B per check, ratio {ours / baseline:.2f}",
        f"  a full gc.collect() while it is kept: {ours_gc:.1f} ms; with the"
        f" entry-tuple layout {baseline_gc:.1f} ms, ratio"
        f" {ours_gc / baseline_gc:.2f}",
    ]


def verdict(value: float, goal: float) -> str:
    return "ok" if value <= goal else "OVER GOAL"


def median_ms(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median time of ``repeat`` calls, in ms, and the last answer."""
    times, answer = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        answer = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, answer


def app_with(checks: int) -> Flask:
    """An app of ``checks`` trivial checks, their results cached, its
    history full, and the two baseline routes."""
    app = Flask("page_benchmark")
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True,
        HEALTHCHECK_CACHE_TTL=3600.0,
        HEALTHCHECK_THREADS=False,
    )
    health = HealthCheck(app)
    for name in names(checks):
        health.add_check(lambda: True, name=name)
    clock = [1_700_000_000.0]
    history = History(clock=lambda: clock[0])
    fill(history, clock, checks)
    with app.app_context():
        health.run()  # every result cached from now on
    get_state(app).runner.recorder.history = history

    def rows() -> list[dict[str, str]]:
        return [
            {
                "name": result.name,
                "status": result.status,
                "duration": f"{result.duration * 1000:.1f} ms",
                "time": time.strftime("%H:%M:%S UTC", time.gmtime(result.started_at)),
            }
            for result in cached
        ]

    cached = [
        CheckResult(name=name, status="pass", duration=0.0042) for name in names(checks)
    ]

    @app.get("/bare-page")
    def bare_page() -> str:
        return render_template_string(BARE_PAGE, rows=rows())

    # The same results as plain tuples, as many per check as the document
    # shows (DOCUMENT_RESULTS over the series).
    shown = series_limit(checks + 1, None, MAX_RESULTS)
    plain = {
        name: [(1_700_000_000.0 + 10 * run, "pass", 0.0042) for run in range(shown)]
        for name in names(checks)
    }

    @app.get("/bare-history")
    def bare_history() -> str:
        return json.dumps(
            {
                name: [
                    {
                        "time": datetime.fromtimestamp(at, timezone.utc).isoformat(),
                        "status": status,
                        "duration_ms": round(duration * 1000, 1),
                    }
                    for at, status, duration in results
                ]
                for name, results in plain.items()
            }
        )

    return app


def page(checks: int, repeat: int) -> list[str]:
    app = app_with(checks)
    client = app.test_client()
    history = get_state(app).history
    report = HealthReport.from_results(
        [
            CheckResult(
                name=name,
                status="fail" if i % 10 == 0 else "pass",
                duration=0.0042,
                error="ConnectionError: connection refused" if i % 10 == 0 else None,
            )
            for i, name in enumerate(names(checks))
        ]
    )

    def own() -> str:
        snapshot = history.snapshot([result.name for result in report.checks])
        return render_status_page(report, details=True, refresh=10, history=snapshot)

    own_ms, _ = median_ms(own, repeat)
    page_ms, response = median_ms(lambda: client.get("/health", headers=HTML), repeat)
    size = len(response.data)
    bare_ms, bare = median_ms(lambda: client.get("/bare-page"), repeat)
    doc_ms, document = median_ms(lambda: client.get("/health/history"), repeat)
    bare_doc_ms, bare_doc = median_ms(lambda: client.get("/bare-history"), repeat)
    goals = checks >= 1000
    cells = response.data.count(b"<rect class=")
    return [
        f"status page, {checks} checks x {MAX_RESULTS} results, details:"
        f" {size / 1e6:.2f} MB ({cells:,} strip cells),"
        f" bare route {len(bare.data) / 1e6:.2f} MB"
        + (
            f"; goal <= {GOAL_BYTES / 1e6:g} MB: {verdict(size, GOAL_BYTES)},"
            f" ratio {size / GOAL_BYTES:.2f}"
            if goals
            else ""
        ),
        f"  request {page_ms:.1f} ms = {page_ms / bare_ms:.2f} x the bare route"
        f" ({bare_ms:.1f} ms); the page's own work (snapshot + render)"
        f" {own_ms:.1f} ms"
        + (
            f"; goal <= {GOAL_MS:g} ms: {verdict(page_ms, GOAL_MS)},"
            f" ratio {page_ms / GOAL_MS:.2f}"
            if goals
            else ""
        ),
        f"<url>/history, {checks} checks, details:"
        f" {len(document.data) / 1e6:.2f} MB"
        f" ({json.loads(document.data)['limit']} results per series shown),"
        f" {doc_ms:.1f} ms = {doc_ms / bare_doc_ms:.2f} x a bare route's"
        f" json.dumps of as many results ({bare_doc_ms:.1f} ms,"
        f" {len(bare_doc.data) / 1e6:.2f} MB)"
        + (
            f"; goal <= {GOAL_BYTES / 1e6:g} MB and {GOAL_MS:g} ms:"
            f" {verdict(len(document.data), GOAL_BYTES)},"
            f" {verdict(doc_ms, GOAL_MS)}"
            if goals
            else ""
        ),
    ]


def run(repeat: int = 5) -> list[str]:
    lines = memory()
    for checks in (100, 1000):
        lines.extend(page(checks, repeat))
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
