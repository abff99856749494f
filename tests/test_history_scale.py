"""The history at scale: kept as columns (a few bytes a result), read back
unchanged, and drawn in bounded strips whose cells take the worst status
of their runs and say on hover how many runs had each (no timed
assertions: the times are in benchmarks/page.py)."""

from __future__ import annotations

import copy
import json
import pickle
import re
import tracemalloc

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, Status
from flask_healthcheck.history import (
    MAX_RESULTS,
    Entry,
    History,
    Trend,
    history_document,
)
from flask_healthcheck.state import get_state
from flask_healthcheck.status_page import render_status_page
from flask_healthcheck.strips import TITLE_BUDGET, trend_view

from .test_history import Clock
from .test_html import HTML, Page

LETTER: dict[str, Status] = {"p": "pass", "w": "warn", "f": "fail"}


def record(history: History, clock: Clock, name: str, statuses: str) -> None:
    for i, letter in enumerate(statuses):
        clock.advance(10)
        history.record(
            CheckResult(name=name, status=LETTER[letter], duration=0.001 * (i % 7))
        )


# -- memory ----------------------------------------------------------------------


def test_a_full_history_takes_under_8_kb_a_check() -> None:
    """It took 51 KB a check (an Entry tuple and its floats per result)."""
    clock = Clock()
    checks = 100
    results = [
        [
            CheckResult(name=f"check_{n}", status=s, duration=0.001 * n)
            for s in ("pass", "fail")
        ]
        for n in range(checks)
    ]

    def fill() -> int:
        for run in range(MAX_RESULTS):
            clock.advance(10)
            for pair in results:
                history.record(pair[run % 2])
            history.record_overall("pass")
        return tracemalloc.get_traced_memory()[0] - before

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        history = History(clock=lambda: clock() + 0.0)  # a new float per reading
        full = fill()
        settled = fill()  # the columns' spare capacity, the counters' ints
        again = fill()
    finally:
        tracemalloc.stop()
    assert full / checks < 8_000, f"{full / checks:.0f} bytes a check"
    assert settled / checks < 8_000, f"{settled / checks:.0f} bytes a check"
    assert again - settled < 2_000, "the history grew"
    trend = history.snapshot(["check_7"]).checks["check_7"]
    assert trend.count == MAX_RESULTS
    assert trend.transitions == MAX_RESULTS - 1


# -- read back unchanged ------------------------------------------------------------


def test_results_read_back_exactly() -> None:
    clock = Clock(1_700_000_000.123456)
    history = History(clock=clock)
    durations = [0.012345, 0.1, 1e4, 0.0, 1e-9, 123.456789012345, 7.0]
    statuses: list[Status] = ["pass", "warn", "fail", "fail", "pass", "warn", "pass"]
    expected = []
    for duration, status in zip(durations, statuses, strict=True):
        clock.advance(0.3333)
        history.record(CheckResult(name="db", status=status, duration=duration))
        expected.append(Entry(clock.now, status, duration))
    trend = history.snapshot(["db"]).checks["db"]
    assert trend.entries == tuple(expected)
    assert all(type(entry.at) is float for entry in trend.entries)
    assert all(type(entry.duration) is float for entry in trend.entries)
    assert (trend.count, trend.status, trend.transitions) == (7, "pass", 5)
    assert trend.uptime == pytest.approx(5 / 7)


def test_a_trend_read_from_columns_is_the_trend_of_its_entries() -> None:
    clock = Clock()
    history = History(clock=clock)
    record(history, clock, "db", "ppfwfpp")
    trend = history.snapshot(["db"]).checks["db"]
    built = Trend(trend.entries, trend.status, trend.since, trend.transitions)
    assert built == trend
    assert built.columns == trend.columns
    assert (built.count, built.uptime) == (trend.count, trend.uptime)
    assert copy.deepcopy(trend) == trend
    assert pickle.loads(pickle.dumps(trend)) == trend
    with pytest.raises(AttributeError):
        trend.status = "fail"
    assert "7 entries" in repr(trend)


def test_the_history_document_is_unchanged() -> None:
    """The bytes the history made when it kept a tuple per result."""
    clock = Clock()
    history = History(clock=clock)
    runs: list[tuple[float, Status]] = [
        (0.012345, "pass"),
        (0.1, "fail"),
        (2.5, "warn"),
    ]
    for duration, status in runs:
        clock.advance(10.25)
        history.record(CheckResult(name="db", status=status, duration=duration))
        history.record(CheckResult(name="cache", status="pass", duration=3e-05))
        history.record_overall("fail" if status == "fail" else "pass")
    clock.advance(1)
    snapshot = history.snapshot(["db", "cache"])
    document = json.dumps(history_document(snapshot, details=True, limit=2))
    assert document == (
        '{"since": "2023-11-14T22:13:20.000Z", "max_results": 360,'
        ' "max_age_seconds": 3600.0, "limit": 2, "overall": {"status": "pass",'
        ' "since": "2023-11-14T22:13:50.750Z", "uptime_percent": 66.67,'
        ' "transitions": 2, "count": 3, "results": [{"time":'
        ' "2023-11-14T22:13:40.500Z", "status": "fail"}, {"time":'
        ' "2023-11-14T22:13:50.750Z", "status": "pass"}]}, "checks": {"db":'
        ' {"status": "warn", "since": "2023-11-14T22:13:50.750Z",'
        ' "uptime_percent": 66.67, "transitions": 2, "count": 3, "results":'
        ' [{"time": "2023-11-14T22:13:40.500Z", "status": "fail", "duration_ms":'
        ' 100.0}, {"time": "2023-11-14T22:13:50.750Z", "status": "warn",'
        ' "duration_ms": 2500.0}]}, "cache": {"status": "pass", "since":'
        ' "2023-11-14T22:13:30.250Z", "uptime_percent": 100.0, "transitions": 0,'
        ' "count": 3, "results": [{"time": "2023-11-14T22:13:40.500Z", "status":'
        ' "pass", "duration_ms": 0.0}, {"time": "2023-11-14T22:13:50.750Z",'
        ' "status": "pass", "duration_ms": 0.0}]}}}'
    )


def test_a_series_shorter_than_the_limit_shows_every_result() -> None:
    """200 results and a limit of 360 showed the newest 160."""
    clock = Clock()
    history = History(clock=clock)
    record(history, clock, "db", "p" * 200)
    document = history_document(history.snapshot(["db"]), details=True)
    assert document["limit"] == 360
    assert len(document["checks"]["db"]["results"]) == 200
    document = history_document(
        history.snapshot(["db"], overall=False), details=True, limit=300
    )
    assert document["limit"] == 300
    assert len(document["checks"]["db"]["results"]) == 200


def test_ages_follow_the_monotonic_clock_across_wall_clock_steps() -> None:
    wall, ticks = [1_700_000_000.0], [500.0]
    history = History(clock=lambda: wall[0], monotonic=lambda: ticks[0], max_age=100)
    steps = [0, 0, -3600, 0, 7200, 0.05, 0, -86400, 0, 0]
    for step in steps:  # one result every 10 s of real time
        wall[0] += 10 + step
        ticks[0] += 10
        history.record(CheckResult(name="db", status="pass"))
    ticks[0] += 5
    for kept in range(10, 0, -1):
        assert history.snapshot(["db"]).checks["db"].count == kept
        ticks[0] += 10
        wall[0] -= 1000  # whatever the wall clock does
    assert history.snapshot(["db"]).checks["db"].count == 0


# -- strips ----------------------------------------------------------------------


def trend_of(statuses: str) -> Trend:
    clock = Clock()
    history = History(clock=clock)
    record(history, clock, "db", statuses)
    return history.snapshot(["db"]).checks["db"]


def test_a_bucket_takes_its_worst_status_and_counts_its_runs() -> None:
    trend = trend_of("ppp" + "pwp" + "pfw" + "ffp")
    now = trend.columns.times[-1] + 1
    view = trend_view(trend, now, 4, durations=True, factor=3)
    assert view is not None
    assert [cell.css for cell in view.cells] == ["p", "w", "f", "f"]
    assert [cell.x for cell in view.cells] == [0, 1, 2, 3]
    tallies = [cell.title.split(" · ")[1] for cell in view.cells]
    assert tallies == [
        "3 runs: 3 passing",
        "3 runs: 2 passing, 1 warning",
        "3 runs: 1 passing, 1 warning, 1 failing",
        "3 runs: 1 passing, 2 failing",
    ]
    for cell in view.cells:
        assert re.fullmatch(r"\d\d:\d\d:\d\d–\d\d:\d\d:\d\d UTC · .*", cell.title)
    assert view.label == "Last 12 runs: 7 passing, 2 warning, 3 failing"
    # The sparkline has a point per cell, at the longest run of each.
    assert view.spark is not None
    assert len(view.spark.split()) == 4


def test_buckets_are_counted_from_the_newest_run() -> None:
    view = trend_view(trend_of("f" + "ppp" + "ppp"), 0, 4, durations=False, factor=3)
    assert view is not None
    assert [(cell.css, cell.x) for cell in view.cells] == [
        ("f", 1),
        ("p", 2),
        ("p", 3),
    ]
    assert view.cells[0].title.endswith("UTC · fail")  # a bucket of one run


def test_a_page_of_many_checks_keeps_titles_with_coarser_cells() -> None:
    """16 full strips and the overall one: per-run cells would be too many
    for titles, so each cell covers 4 runs and says what they were."""
    clock = Clock()
    history = History(clock=clock)
    names = [f"check_{n:02}" for n in range(16)]
    pattern = "ppppppf" + "pppwppp" + "ppp"
    for run in range(MAX_RESULTS):
        clock.advance(10)
        for n, name in enumerate(names):
            letter = pattern[(run + n) % len(pattern)]
            history.record(CheckResult(name=name, status=LETTER[letter]))
        history.record_overall("pass")
    report = HealthReport.from_results([CheckResult(name=name) for name in names])
    page = render_status_page(
        report, details=True, refresh=10, history=history.snapshot(names)
    )
    parsed = Page(page)
    titles = [t for t in parsed.text if re.search(r" UTC · \d+ runs: ", t)]
    cells = [a for tag, a in parsed.tags if tag == "rect" and a["class"] != "track"]
    assert len(cells) == len(titles) == 17 * MAX_RESULTS // 4 <= TITLE_BUDGET
    assert all(" · 4 runs: " in title for title in titles)
    # Each cell is coloured by the worst of its four runs.
    statuses = history.snapshot(names[:1]).checks[names[0]].columns.statuses
    worst = [
        "f" if "f" in chunk else "w" if "w" in chunk else "p"
        for chunk in (statuses[i : i + 4] for i in range(0, MAX_RESULTS, 4))
    ]
    assert [a["class"] for a in cells[90:180]] == worst  # after the overall strip
    assert titles[90].endswith(
        ", ".join(
            f"{statuses[:4].count(letter)} {word}"
            for letter, word in (("p", "passing"), ("w", "warning"), ("f", "failing"))
            if letter in statuses[:4]
        )
    )


def test_a_thousand_checks_with_full_histories_through_the_app(app: Flask) -> None:
    """The view's own path (the app's history, its snapshot, the page):
    under 1 MB, every check's row and stats, the overall strip bounded."""
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True, HEALTHCHECK_CACHE_TTL=3600.0)
    health = HealthCheck(app)
    names = [f"dependency_{n:04}" for n in range(1000)]
    for name in names:
        health.add_check(lambda: True, name=name)
    client = app.test_client()
    client.get("/health")  # one run, cached from now on
    history = get_state(app).history
    results = [
        [CheckResult(name=name, status=LETTER[s], duration=0.004) for s in "pfw"]
        for name in names
    ]
    for run in range(MAX_RESULTS):
        for n, variants in enumerate(results):
            history.record(variants[(run + n) % 3])
        history.record_overall("pass")
    response = client.get("/health", headers=HTML)
    assert response.status_code == 200
    assert len(response.data) < 1_000_000, len(response.data)
    page = response.text
    assert page.count('<tr class="check pass">') == 1000
    assert page.count("240 of 360 runs in the last") == 1000
    assert page.count("360 of 360 runs in the last") == 1  # the overall status
    # Too many checks for strips: the overall one only, a cell per run.
    assert page.count('<svg class="strip"') == 1
    assert page.count("<rect class=") == 1 + MAX_RESULTS
