"""The history: its bounds, its maths, and what feeds it (no sleeps: the
history's clock is the test's)."""

from __future__ import annotations

import itertools
import os
import re
import time
import tracemalloc

import pytest
from flask import Flask

from flask_healthcheck import (
    CheckResult,
    ConfigurationError,
    HealthCheck,
    Status,
)
from flask_healthcheck.history import MAX_AGE, MAX_RESULTS, History
from flask_healthcheck.series import SLACK
from flask_healthcheck.state import get_state
from flask_healthcheck.strips import format_period, format_uptime

from .children import in_child
from .helpers import bounded, configured_health, strict_json
from .test_html import HTML, Page


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def result(
    status: Status = "pass", name: str = "db", duration: float = 0.01
) -> CheckResult:
    return CheckResult(name=name, status=status, duration=duration)


def feed(history: History, clock: Clock, statuses: str, step: float = 10.0) -> None:
    """Record one result of ``db`` per letter: ``p``ass, ``w``arn, ``f``ail."""
    names: dict[str, Status] = {"p": "pass", "w": "warn", "f": "fail"}
    for letter in statuses:
        clock.advance(step)
        history.record(result(names[letter]))


def test_the_defaults_are_360_results_or_an_hour() -> None:
    assert (MAX_RESULTS, MAX_AGE) == (360, 3600.0)


def test_a_series_keeps_the_newest_results_up_to_the_count() -> None:
    clock = Clock()
    history = History(clock=clock)
    for i in range(10_000):
        clock.advance(0.01)
        history.record(result(duration=i))
    (trend,) = history.snapshot(["db"]).checks.values()
    assert len(trend.entries) == MAX_RESULTS
    assert [e.duration for e in trend.entries] == list(range(10_000 - 360, 10_000))
    assert trend.entries[-1].at == clock.now


@pytest.mark.parametrize("over", range(2 * SLACK + 2))
def test_a_read_has_exactly_the_newest_results_between_drops(over: int) -> None:
    """A full series drops its oldest results together, every few results
    (issue 20): a read between two drops still has the newest
    ``MAX_RESULTS``, never more, and reads again the same."""
    clock = Clock()
    history = History(clock=clock)
    count = MAX_RESULTS + over
    for i in range(count):
        clock.advance(0.01)
        history.record(result(duration=i))
    for _ in range(2):
        (trend,) = history.snapshot(["db"]).checks.values()
        assert [e.duration for e in trend.entries] == list(
            range(count - MAX_RESULTS, count)
        )
        assert trend.count == MAX_RESULTS


def test_a_history_keeping_no_results_records_and_reads_none() -> None:
    """``max_results=0`` (the document's minimum) keeps nothing: a full
    series dropping its oldest together drops every entry, and recording
    goes on."""
    clock = Clock()
    history = History(max_results=0, clock=clock)
    for i in range(3 * SLACK):
        clock.advance(0.01)
        history.record(result(duration=i))
        history.record_overall("pass")
    snapshot = history.snapshot(["db"])
    assert [trend.count for trend in snapshot.checks.values()] == [0]
    assert snapshot.overall is not None and snapshot.overall.count == 0


def test_a_series_keeps_no_result_older_than_the_age() -> None:
    clock = Clock()
    history = History(clock=clock)
    first = clock.now + 20.0
    feed(history, clock, "p" * 1_000, step=20.0)
    trend = history.snapshot(["db"]).checks["db"]
    assert len(trend.entries) == 181  # now, and every 20 s back to an hour ago
    assert trend.entries[0].at == clock.now - MAX_AGE

    clock.advance(MAX_AGE - 60)  # a quiet hour: only the last minute is left
    trend = history.snapshot(["db"]).checks["db"]
    assert len(trend.entries) == 4
    clock.advance(61)
    trend = history.snapshot(["db"]).checks["db"]
    assert trend.entries == ()
    assert trend.uptime is None
    # What it was doing last is still known, and since when.
    assert trend.status == "pass"
    assert trend.since == first


def test_memory_stays_fixed_whatever_the_number_of_results() -> None:
    clock = Clock()

    def record(count: int) -> None:
        for _ in range(count):
            clock.advance(0.001)
            for name in ("db", "cache", "queue"):
                history.record(result(name=name, duration=clock.now % 1))
            history.record_overall("pass")

    tracemalloc.start()
    try:
        history = History(clock=clock)
        record(MAX_RESULTS)  # every series full
        full = tracemalloc.get_traced_memory()[0]
        record(10_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert full < 4 * 50_000, f"four full series take {full} bytes"
    assert after - full < 2_000, f"the history grew by {after - full} bytes"
    snapshot = history.snapshot(["db", "cache", "queue"])
    assert [len(t.entries) for t in snapshot.checks.values()] == [MAX_RESULTS] * 3
    assert snapshot.overall is not None
    assert len(snapshot.overall.entries) == MAX_RESULTS


@pytest.mark.parametrize(
    ("statuses", "uptime", "transitions"),
    [
        ("pppp", 1.0, 0),
        ("ffff", 0.0, 0),
        ("pfpf", 0.5, 3),
        ("ppwp", 1.0, 2),  # a warning still serves traffic
        ("pppf", 0.75, 1),
        ("pffppppppp", 0.8, 2),
    ],
)
def test_uptime_is_the_share_of_results_that_did_not_fail(
    statuses: str, uptime: float, transitions: int
) -> None:
    clock = Clock()
    history = History(clock=clock)
    feed(history, clock, statuses)
    trend = history.snapshot(["db"]).checks["db"]
    assert trend.uptime == pytest.approx(uptime)
    assert trend.transitions == transitions


def test_uptime_and_transitions_cover_the_window_only() -> None:
    clock = Clock()
    history = History(max_results=4, clock=clock)
    feed(history, clock, "ffpfpppp")
    trend = history.snapshot(["db"]).checks["db"]
    assert [e.status for e in trend.entries] == ["pass"] * 4
    assert (trend.uptime, trend.transitions) == (1.0, 0)


def test_the_current_status_began_at_its_first_result() -> None:
    clock = Clock()
    history = History(clock=clock)
    feed(history, clock, "ppp")
    first = clock.now - 20
    assert history.snapshot(["db"]).checks["db"].since == first
    feed(history, clock, "f")
    failed = clock.now
    feed(history, clock, "ff")
    trend = history.snapshot(["db"]).checks["db"]
    assert (trend.status, trend.since) == ("fail", failed)


def test_the_overall_status_counts_only_runs_that_recorded_a_result() -> None:
    clock = Clock()
    history = History(clock=clock)
    history.record_overall("pass")  # nothing ran: nothing to add
    history.record(result())
    history.record_overall("pass")
    history.record_overall("pass")  # a second request that reused the result
    history.record(result("fail"))
    history.record(result("fail", name="cache"))
    history.record_overall("fail")
    overall = history.snapshot().overall
    assert overall is not None
    assert [e.status for e in overall.entries] == ["pass", "fail"]


def test_a_snapshot_has_the_checks_asked_for_in_that_order() -> None:
    history = History(clock=Clock())
    for name in ("a", "b", "c"):
        history.record(result(name=name))
    snapshot = history.snapshot(["c", "unknown", "a"], overall=False)
    assert list(snapshot.checks) == ["c", "a"]
    assert snapshot.overall is None


# -- what feeds it -------------------------------------------------------------


def history_of(app: Flask) -> History:
    return get_state(app).history


def test_every_run_adds_a_result_per_check_and_one_overall(
    app: Flask, health: HealthCheck
) -> None:
    outcomes = iter([True, False, True])
    health.add_check(lambda: next(outcomes), name="flappy")
    health.add_check(lambda: True, name="steady")
    client = app.test_client()
    for _ in range(3):
        client.get("/health")
    snapshot = history_of(app).snapshot(["flappy", "steady"])
    assert [e.status for e in snapshot.checks["flappy"].entries] == [
        "pass",
        "fail",
        "pass",
    ]
    assert len(snapshot.checks["steady"].entries) == 3
    assert snapshot.overall is not None
    assert [e.status for e in snapshot.overall.entries] == ["pass", "fail", "pass"]


def test_a_cached_result_is_one_result_however_many_probes_reuse_it(
    app: Flask,
) -> None:
    health = configured_health(app, HEALTHCHECK_CACHE_TTL=60.0)
    health.add_check(lambda: True, name="db")
    client = app.test_client()
    for _ in range(50):
        client.get("/health")
        client.get("/health/db")
    snapshot = history_of(app).snapshot(["db"])
    assert len(snapshot.checks["db"].entries) == 1
    assert snapshot.overall is not None
    assert len(snapshot.overall.entries) == 1


def test_a_timed_out_check_is_recorded_failed_at_its_timeout(
    app: Flask, health: HealthCheck
) -> None:
    health.add_check(lambda: os.read(os.pipe()[0], 1), name="hung", timeout=0.1)
    with app.app_context():
        health.run()
    (entry,) = history_of(app).snapshot(["hung"]).checks["hung"].entries
    assert (entry.status, entry.duration) == ("fail", 0.1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_an_empty_history(
    app: Flask, health: HealthCheck
) -> None:
    health.add_check(lambda: True, name="db")
    with app.app_context():
        health.run()

    def in_the_child() -> str:
        with app.app_context():  # the child's first entry: it notices the fork
            before = len(history_of(app).names())
            health.run()
        after = len(history_of(app).snapshot(["db"]).checks["db"].entries)
        return f"{before} {after}"

    assert in_child("os.fork", in_the_child) == "0 1"
    assert len(history_of(app).snapshot(["db"]).checks["db"].entries) == 1


# -- the reserved name ---------------------------------------------------------


def test_a_check_named_history_is_refused_at_registration(health: HealthCheck) -> None:
    with pytest.raises(ConfigurationError, match="can't be named 'history'"):
        health.add_check(lambda: True, name="history")

    def history() -> bool:
        return True

    with pytest.raises(ConfigurationError, match="can't be named 'history'"):
        health.check(history)


def test_a_check_named_history_is_refused_before_init_app() -> None:
    health = HealthCheck()
    with pytest.raises(ConfigurationError, match="can't be named 'history'"):
        health.add_check(lambda: True, name="history")


def test_a_service_named_history_is_refused_at_init_app(app: Flask) -> None:
    app.config["HEALTHCHECK_SERVICES"] = ["history"]
    with pytest.raises(ConfigurationError, match="can't be named 'history'"):
        HealthCheck(app)


# -- <url>/history ---------------------------------------------------------------


def flapping(app: Flask, health: HealthCheck, runs: int) -> None:
    """A check ``flappy`` that passes and fails by turns, a steady ``db``,
    and ``runs`` runs of both."""
    outcomes = itertools.cycle([True, False])
    health.add_check(lambda: next(outcomes), name="flappy")
    health.add_check(lambda: True, name="db")
    with app.app_context():
        for _ in range(runs):
            health.run()


def test_the_history_without_details_is_the_overall_status_only(
    app: Flask, health: HealthCheck
) -> None:
    flapping(app, health, 4)
    response = app.test_client().get("/health/history")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    document = response.get_json()
    assert set(document) == {
        "since",
        "max_results",
        "max_age_seconds",
        "limit",
        "overall",
    }
    assert (document["max_results"], document["max_age_seconds"]) == (360, 3600)
    assert document["limit"] == 360
    overall = document["overall"]
    assert [r["status"] for r in overall["results"]] == ["pass", "fail"] * 2
    assert (overall["uptime_percent"], overall["transitions"]) == (50.0, 3)
    assert overall["status"] == "fail"
    assert set(overall["results"][0]) == {"time", "status"}
    for name in ("flappy", "db", "duration"):
        assert name not in response.text


def test_the_history_with_details_has_every_check(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    flapping(app, health, 3)
    document = app.test_client().get("/health/history").get_json()
    assert list(document["checks"]) == ["flappy", "db"]
    flappy = document["checks"]["flappy"]
    assert [r["status"] for r in flappy["results"]] == ["pass", "fail", "pass"]
    assert flappy["uptime_percent"] == pytest.approx(66.67)
    assert flappy["since"] == flappy["results"][-1]["time"]
    assert flappy["results"][0]["time"].endswith("Z")
    assert isinstance(flappy["results"][0]["duration_ms"], float)
    assert document["checks"]["db"]["transitions"] == 0


def test_the_history_runs_no_check_and_answers_json_to_browsers(
    app: Flask, health: HealthCheck
) -> None:
    calls = []
    health.add_check(lambda: calls.append(1), name="db")
    client = app.test_client()
    response = client.get("/health/history", headers={"Accept": "text/html"})
    assert response.content_type == "application/json"
    assert calls == []
    assert response.get_json()["overall"]["results"] == []
    assert client.head("/health/history").status_code == 200


def test_the_history_is_at_the_main_url_only(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    HealthCheck(app)
    response = app.test_client().get("/livez/history")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


def test_check_selects_and_limit_caps_the_results(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(lambda: True, name="cache")
    flapping(app, health, 5)
    client = app.test_client()
    document = client.get("/health/history?check=db&check=cache&check=").get_json()
    assert list(document["checks"]) == ["cache", "db"]  # registration order
    document = client.get("/health/history?check=flappy&limit=2").get_json()
    flappy = document["checks"]["flappy"]
    assert document["limit"] == 2
    assert [r["status"] for r in flappy["results"]] == ["fail", "pass"]
    # The summary covers every result kept, not only those shown.
    assert (flappy["count"], flappy["transitions"]) == (5, 4)
    assert len(document["overall"]["results"]) == 2
    document = client.get("/health/history?limit=0").get_json()
    assert document["checks"]["db"]["results"] == []
    assert document["checks"]["db"]["count"] == 5


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("check=nope", "check"),
        ("check=db&check=nope", "check"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=361", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("limit=%D9%A3", "limit"),  # an Arabic-Indic digit three
        ("limit=1e3", "limit"),
        ("check=" + "x" * 1_000_000, "check"),
        ("&".join(f"check=x{n}" for n in range(10_000)), "check"),
    ],
)
def test_a_bad_history_parameter_is_a_400_envelope(
    app: Flask, query: str, key: str
) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    flapping(app, health, 1)
    response = app.test_client().get(f"/health/history?{query}")
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == "failure"
    assert list(body["input_errors"]) == [key]


def test_the_history_of_a_thousand_checks_stays_bounded(app: Flask) -> None:
    """1,000 checks with full histories (360 results each) made a 27.5 MB
    document; each series now shows its newest results only."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    for number in range(1000):
        health.add_check(lambda: True, name=f"check_{number:04}")
    history = get_state(app).history
    for _ in range(MAX_RESULTS):
        for number in range(1000):
            history.record(result(name=f"check_{number:04}", duration=0.012345))
        history.record_overall("pass")
    client = app.test_client()
    response = client.get("/health/history")
    document = response.get_json()
    assert len(response.data) < 1_000_000, len(response.data)
    assert document["limit"] == 9  # 10,000 results over 1,001 series
    assert len(document["checks"]) == 1000
    assert document["checks"]["check_0999"]["count"] == MAX_RESULTS
    assert len(document["checks"]["check_0999"]["results"]) == 9
    # Asking for fewer checks gives each more of its results.
    one = client.get("/health/history?check=check_0007").get_json()
    assert len(one["checks"]["check_0007"]["results"]) == MAX_RESULTS
    assert len(client.get("/health/history?limit=2").data) < 500_000


# -- the status page ---------------------------------------------------------------


def strips(parsed: Page) -> list[list[str]]:
    """The cells' colour classes, strip by strip."""
    result: list[list[str]] = []
    for tag, attrs in parsed.tags:
        if tag == "svg" and attrs.get("class") == "strip":
            result.append([])
        elif tag == "rect" and attrs.get("class") in ("p", "w", "f"):
            result[-1].append(attrs["class"] or "")
    return result


def test_the_page_shows_each_checks_strip_uptime_and_trend(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    flapping(app, health, 5)  # and the page's own run makes six
    response = app.test_client().get("/health", headers=HTML)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    parsed = Page(response.text)
    overall, flappy, db = strips(parsed)
    assert flappy == ["p", "f"] * 3
    assert overall == flappy
    assert db == ["p"] * 6
    text = " ".join(parsed.text)
    assert "50 % up (3 of 6 runs in the last" in text
    assert "5 transitions · failing for" in text
    assert "100 % up (6 of 6 runs" in text
    assert "Recent runs · this process, since" in text
    assert len(parsed.find("polyline")) == 2  # a duration sparkline per check
    titles = [t for t in parsed.text if re.match(r"\d\d:\d\d:\d\d UTC · ", t)]
    assert titles[0].endswith(" UTC · pass")  # the overall strip: no duration
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC · fail · [\d.]+ ms", titles[7])


def test_without_details_the_page_shows_the_overall_strip_only(
    app: Flask, health: HealthCheck
) -> None:
    flapping(app, health, 3)
    response = app.test_client().get("/health", headers=HTML)
    parsed = Page(response.text)
    assert strips(parsed) == [["p", "f", "p", "f"]]
    assert "50 % up (2 of 4 runs" in " ".join(parsed.text)
    assert not parsed.find("polyline")
    for name in ("flappy", "db", " ms<"):
        assert name not in response.text


def test_tagged_endpoints_show_their_checks_trends_without_the_overall(
    app: Flask,
) -> None:
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True, HEALTHCHECK_ENDPOINTS={"/readyz": ["ready"]}
    )
    health = HealthCheck(app)
    health.add_check(lambda: True, name="db", tags=["ready"])
    health.add_check(lambda: False, name="queue")
    client = app.test_client()
    parsed = Page(client.get("/readyz", headers=HTML).text)
    assert strips(parsed) == [["p"]]
    assert "Recent runs" not in parsed.text
    parsed = Page(client.get("/health?exclude=queue", headers=HTML).text)
    assert strips(parsed) == [["p", "p"]]


def test_the_page_loads_nothing_and_links_nowhere(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    flapping(app, health, 30)
    body = app.test_client().get("/health", headers=HTML).data
    assert b"<script" not in body
    parsed = Page(body.decode())
    for tag, attrs in parsed.tags:
        for key in ("src", "href", "xlink:href"):
            # Only the page's own stylesheet and icon.
            assert tag == "link" or key not in attrs
            assert (attrs.get(key) or "/health/status.").startswith("/health/status.")
    assert re.findall(rb"https?://[\w./]*", body) == []


def test_the_csp_is_sent_on_refusals_too(app: Flask, health: HealthCheck) -> None:
    response = app.test_client().get("/health/nope", headers=HTML)
    assert response.status_code == 404
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    json_response = app.test_client().get("/health")
    assert "Content-Security-Policy" not in json_response.headers


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 s"),
        (45.9, "45 s"),
        (240, "4 min"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86400 * 3 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_periods_read_at_a_glance(seconds: float, text: str) -> None:
    assert format_period(seconds) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [(1.0, "100 %"), (359 / 360, "99.7 %"), (0.9999, "99.9 %"), (0.7, "70 %")],
)
def test_uptime_is_rounded_down(share: float, text: str) -> None:
    assert format_uptime(share) == text


# -- the history URL -----------------------------------------------------------


def get_status(app: Flask, path: str = "/health") -> int:
    return bounded(lambda: app.test_client().get(path).status_code, 2, f"GET {path}")


def test_the_history_url_answers(app: Flask) -> None:
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    assert get_status(app) == 200
    assert get_status(app, "/health/history") == 200


# -- what the history shows ----------------------------------------------------


SECRET = "s3cr3t-hunter2"


def test_the_history_without_details_names_no_check_and_no_error(
    app: Flask, health: HealthCheck
) -> None:
    def billing_db_at_10_0_0_7() -> bool:
        raise RuntimeError(f"postgres://app:{SECRET}@10.0.0.7/billing")

    health.add_check(billing_db_at_10_0_0_7)
    client = app.test_client()
    assert client.get("/health").status_code == 500
    body = client.get("/health/history").data
    assert b"billing_db" not in body and SECRET.encode() not in body
    assert "checks" not in strict_json(body)


def test_the_history_with_details_keeps_no_error_text(app: Flask) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    health.add_check(lambda: (False, f"token={SECRET}"), name="api")
    client = app.test_client()
    client.get("/health")
    body = client.get("/health/history").data
    assert SECRET.encode() not in body
    assert strict_json(body)["checks"]["api"]["status"] == "fail"


def test_a_hundred_thousand_results_over_200_checks_stay_bounded_and_fast() -> None:
    history = History(max_results=360)
    names = [f"check_{i}" for i in range(200)]
    started = time.monotonic()
    for i in range(100_000):
        status: Status = "fail" if i % 7 == 0 else "pass"
        history.record(CheckResult(name=names[i % 200], status=status, duration=1e-3))
        history.record_overall(status)
    snapshot = history.snapshot(names)
    assert time.monotonic() - started < 2.5
    assert all(len(trend.entries) == 360 for trend in snapshot.checks.values())
    assert snapshot.overall is not None and len(snapshot.overall.entries) == 360
