"""RSS and Atom feeds of status changes, read by ``feedparser`` (what feed
readers and chat integrations use) and by a strict XML parser. The
history's clock is the test's: no sleeps, exact times."""

from __future__ import annotations

import calendar
import itertools
import re
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from xml.etree import ElementTree

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, Status
from flask_healthcheck.feeds import MAX_ENTRIES
from flask_healthcheck.formats import FORMATS, RenderContext
from flask_healthcheck.history import MAX_AGE, History
from flask_healthcheck.state import get_state

from .servers import LOOPBACK
from .test_history import Clock

RSS = {"Accept": "application/rss+xml"}
ATOM = {"Accept": "application/atom+xml"}


class Feed(NamedTuple):
    """A feed format: the ``Accept`` header asking for it, and its
    feedparser version."""

    accept: dict[str, str]
    version: str

    def of(self, client: FlaskClient) -> Any:
        """The feed ``client`` gets from ``/health``, parsed."""
        return parse(client.get("/health", headers=self.accept).data, self.version)


@pytest.fixture(params=[Feed(RSS, "rss20"), Feed(ATOM, "atom10")], ids=["rss", "atom"])
def feed(request: pytest.FixtureRequest) -> Feed:
    """Each feed format in turn."""
    param: Feed = request.param
    return param


#: 2023-11-14 22:13:20 UTC.
START = 1_700_000_000.0


def parse(data: bytes, version: str) -> Any:
    """The feed as a reader sees it; fails unless it is well-formed XML and
    a valid feed of that version."""
    ElementTree.fromstring(data)  # strict: raises on anything ill-formed
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == version
    return parsed


def titles(parsed: Any) -> list[str]:
    return [entry.title for entry in parsed.entries]


def ids(parsed: Any) -> list[str]:
    return [entry.id for entry in parsed.entries]


def published(parsed: Any) -> list[float]:
    """Each entry's date, as Unix time (whole seconds)."""
    return [float(calendar.timegm(entry.published_parsed)) for entry in parsed.entries]


class Outcomes:
    """A check's results, told by the test: ``p``ass, ``w``arn, ``f``ail."""

    def __init__(self) -> None:
        self.next = "p"

    def __call__(self) -> Any:
        if self.next == "f":
            raise ConnectionError("db.internal:5432 refused the connection")
        if self.next == "w":
            return CheckResult(name="db", status="warn", error="replica lag 40 s")
        return True


@pytest.fixture
def clock(app: Flask, health: HealthCheck) -> Clock:
    """The app's history on the test's clock, from :data:`START`."""
    clock = Clock(START)
    get_state(app).runner.recorder.history = History(clock=clock)
    return clock


@pytest.fixture
def db(health: HealthCheck) -> Outcomes:
    outcomes = Outcomes()
    health.add_check(outcomes, name="db")
    return outcomes


def run(
    client: FlaskClient, clock: Clock, db: Outcomes, statuses: str, step: float = 10
) -> None:
    """One probe per letter, ``step`` seconds apart."""
    for letter in statuses:
        clock.advance(step)
        db.next = letter
        client.get("/health")


@pytest.fixture
def detailed(app: Flask) -> Iterator[None]:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    yield


# -- by Accept ---------------------------------------------------------------


def test_the_feed_is_valid_and_uncached(client: FlaskClient, feed: Feed) -> None:
    response = client.get("/health", headers=feed.accept)
    assert response.status_code == 200
    assert response.mimetype == feed.accept["Accept"]
    assert response.content_type == f"{feed.accept['Accept']}; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Accept"
    parsed = parse(response.data, feed.version)
    assert parsed.feed.title == "Health: pass"
    assert parsed.feed.link == "http://localhost/health"
    assert response.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')


def test_pass_fail_pass_gives_its_changes_newest_first(
    detailed: None, client: FlaskClient, clock: Clock, db: Outcomes, feed: Feed
) -> None:
    run(client, clock, db, "ppffp")
    parsed = feed.of(client)
    assert titles(parsed) == [
        "Overall status: fail → pass",
        "db: fail → pass",
        "Overall status: pass → fail",
        "db: pass → fail",
    ]
    assert published(parsed) == [START + 50] * 2 + [START + 30] * 2
    assert [e.tags[0].term for e in parsed.entries] == ["pass", "pass", "fail", "fail"]
    assert parsed.feed.title == "Health: pass"
    assert len(set(ids(parsed))) == 4
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", i) for i in ids(parsed))
    # While it fails, the change that began it carries the check's error.
    run(client, clock, db, "f")
    parsed = feed.of(client)
    assert titles(parsed)[:2] == ["Overall status: pass → fail", "db: pass → fail"]
    overall, check = parsed.entries[0].summary, parsed.entries[1].summary
    assert "Now fail: db" in overall
    assert "Error: ConnectionError: db.internal:5432 refused" in check
    assert "Error" not in parsed.entries[3].summary  # past errors aren't kept


def test_dates_are_rfc_822_in_rss_and_rfc_3339_in_atom(
    app: Flask, clock: Clock, db: Outcomes
) -> None:
    client = app.test_client()
    clock.advance(0.25)
    run(client, clock, db, "pf")
    rss = ElementTree.fromstring(client.get("/health", headers=RSS).data)
    dates = [e.text or "" for e in rss.iter("pubDate")]
    assert dates[0] == "Tue, 14 Nov 2023 22:13:40 GMT"
    assert parsedate_to_datetime(dates[0]).timestamp() == START + 20
    atom = ElementTree.fromstring(client.get("/health", headers=ATOM).data)
    ns = "{http://www.w3.org/2005/Atom}"
    updated = [e.text for e in atom.iter(f"{ns}updated")]
    assert updated[:2] == ["2023-11-14T22:13:40.250Z"] * 2  # the feed's, the entry's


def test_a_warn_is_a_change_too(app: Flask, clock: Clock, db: Outcomes) -> None:
    client = app.test_client()
    run(client, clock, db, "pwp")
    parsed = parse(client.get("/health", headers=ATOM).data, "atom10")
    assert titles(parsed) == [
        "Overall status: warn → pass",
        "Overall status: pass → warn",
    ]


def test_entry_ids_are_stable_across_requests_and_polls(
    detailed: None, client: FlaskClient, clock: Clock, db: Outcomes, feed: Feed
) -> None:
    run(client, clock, db, "pf")
    first = feed.of(client)
    again = feed.of(client)
    assert ids(first) == ids(again)
    # More results, no change: the same entries.
    run(client, clock, db, "ff")
    assert ids(feed.of(client)) == ids(first)
    # A new change adds entries on top; the old ones keep their ids.
    run(client, clock, db, "p")
    later = feed.of(client)
    assert ids(later)[2:] == ids(first)
    # Another host name for the same app: same entries.
    other = client.get("/health", headers={**feed.accept, "Host": "health.example"})
    assert ids(parse(other.data, feed.version)) == ids(later)


def test_the_current_status_shows_after_a_quiet_hour(
    app: Flask, detailed: None, clock: Clock, db: Outcomes
) -> None:
    client = app.test_client()
    run(client, clock, db, "pf")
    change = parse(client.get("/health", headers=ATOM).data, "atom10").entries[0]
    assert change.title == "Overall status: pass → fail"
    clock.advance(MAX_AGE + 60)  # the change has left the window; still failing
    run(client, clock, db, "f")
    parsed = parse(client.get("/health", headers=ATOM).data, "atom10")
    assert titles(parsed) == ["Overall status: fail", "db: fail"]
    assert parsed.entries[0].id == change.id  # the same change: no duplicate
    assert published(parsed)[0] == START + 20
    assert "fail since 2023-11-14 22:13:40 UTC" in parsed.entries[0].summary
    assert parsed.feed.title == "Health: fail"


def test_a_restart_posts_one_entry_not_one_per_passing_check(
    app: Flask, detailed: None, clock: Clock, health: HealthCheck
) -> None:
    for i in range(20):
        health.add_check(lambda: True, name=f"ok_{i}")
    health.add_check(lambda: False, name="broken")
    parsed = parse(app.test_client().get("/health", headers=RSS).data, "rss20")
    assert titles(parsed) == ["Overall status: fail", "broken: fail"]
    assert "Now fail: broken" in parsed.entries[0].summary


def test_a_feed_is_bounded_and_keeps_the_current_overall_status(
    app: Flask, detailed: None, clock: Clock, health: HealthCheck
) -> None:
    health.add_check(lambda: False, name="broken")  # the app fails throughout
    flaps = itertools.cycle([True, False])
    health.add_check(lambda: next(flaps), name="flappy")
    client = app.test_client()
    for _ in range(200):
        clock.advance(1)
        client.get("/health")
    parsed = parse(client.get("/health", headers=RSS).data, "rss20")
    assert len(parsed.entries) == MAX_ENTRIES
    assert titles(parsed)[0].startswith("flappy: ")
    assert titles(parsed)[-1] == "Overall status: fail"
    assert published(parsed) == sorted(published(parsed), reverse=True)


def test_a_feed_reader_subscribed_to_the_bare_url_gets_a_feed(
    app: Flask, health: HealthCheck
) -> None:
    """feedparser fetching over HTTP, with its own ``Accept``, from a real
    server on loopback: no ``?format=`` needed; a failure answers 500 and
    still reads."""
    up = [True]
    health.add_check(lambda: up[0], name="db")
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        parsed = feedparser.parse(f"http://{LOOPBACK}:{server.port}/health")
        up[0] = False
        failing = feedparser.parse(f"http://{LOOPBACK}:{server.port}/health")
    finally:
        server.shutdown()
        thread.join(5)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert (parsed.status, parsed.version) == (200, "rss20")
    assert parsed.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert parsed.feed.title == "Health: pass"
    assert titles(parsed) == ["Overall status: pass"]
    assert (failing.bozo, failing.status) == (0, 500)
    assert titles(failing) == ["Overall status: pass → fail"]
    assert failing.entries[0].tags[0].term == "fail"


# -- details ---------------------------------------------------------------------


def test_without_details_only_the_overall_status_shows(
    app: Flask, clock: Clock, health: HealthCheck, feed: Feed
) -> None:
    outcomes = itertools.cycle([True, False])

    def billing_db_at_10_0_0_7() -> bool:
        if next(outcomes):
            return True
        raise ConnectionError("password=hunter2 at 10.0.0.7")

    health.add_check(billing_db_at_10_0_0_7)
    client = app.test_client()
    for _ in range(4):
        clock.advance(5)
        client.get("/health")
    response = client.get("/health", headers=feed.accept)
    parsed = parse(response.data, feed.version)
    assert titles(parsed) == [
        "Overall status: fail → pass",
        "Overall status: pass → fail",
        "Overall status: fail → pass",
        "Overall status: pass → fail",
    ]
    for secret in (
        b"billing",
        b"10.0.0.7",
        b"hunter2",
        b"ConnectionError",
        b"Now fail",
    ):
        assert secret not in response.data


def test_a_tagged_endpoint_shows_its_checks_changes_with_details(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    app.config["HEALTHCHECK_SHOW_DETAILS"] = lambda request: "admin" in request.args
    health = HealthCheck(app)
    clock = Clock(START)
    get_state(app).runner.recorder.history = History(clock=clock)
    outcomes = itertools.cycle([True, False])
    health.add_check(lambda: next(outcomes), name="loop", tags=["live"])
    client = app.test_client()
    for _ in range(3):
        clock.advance(5)
        client.get("/livez")
    response = client.get("/livez?admin", headers=ATOM)
    parsed = parse(response.data, "atom10")
    # The feed's own run (the fourth) failed.
    assert titles(parsed) == [
        "loop: pass → fail",
        "loop: fail → pass",
        "loop: pass → fail",
    ]
    assert not any(t.startswith("Overall") for t in titles(parsed))
    # Without details: no check shows; the feed's title still tells the status.
    response = client.get("/livez", headers=ATOM)
    parsed = parse(response.data, "atom10")
    assert parsed.entries == []
    assert parsed.feed.title == "Health: pass"
    assert b"loop" not in response.data


# -- hostile text ------------------------------------------------------------------


def test_a_hostile_error_still_gives_a_valid_bounded_redacted_feed(
    app: Flask, feed: Feed
) -> None:
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True, SERVICE_TOKEN="s3cr3t-config-value"
    )
    health = HealthCheck(app)
    hostile = (
        "password=hunter2 </content></entry><script>alert(1)</script> ]]> &amp; "
        "\x00\x01\x08\x0b\x0c\x1b[31m\x7f\ud800\udfff\ufffe\uffff "
        "postgresql://admin:pa55word@db/prod s3cr3t-config-value "
    ) + "x" * 1_000_000

    def hostile_check() -> bool:
        raise RuntimeError(hostile)

    health.add_check(hostile_check, name="db\x00<b>&\ud800\x1b")
    client = app.test_client()
    client.get("/health")
    response = client.get("/health", headers=feed.accept)
    assert response.status_code == 500
    assert len(response.data) < 20_000
    parsed = parse(response.data, feed.version)
    text = response.get_data(as_text=True)
    for secret in ("hunter2", "pa55word", "s3cr3t-config-value", "<script>", "\x00"):
        assert secret not in text
    assert "\\x00" in text and "\\x1b" in text  # shown as escapes, not hidden
    (overall, check) = parsed.entries
    assert check.title == "db\\x00<b>&\ufffd\\x1b: fail"
    assert "Error: RuntimeError: password=***" in check.summary
    assert "Now fail: db\\x00<b>&" in overall.summary


def test_a_hostile_host_or_path_is_escaped(client: FlaskClient, feed: Feed) -> None:
    host = client.get(
        "/health", headers={**feed.accept, "Host": 'a"><script>x</script>'}
    )
    parsed = parse(host.data, feed.version)
    assert b"<script>" not in host.data
    assert parsed.feed.title == "Health: pass"
    path = client.get('/health/"><script>x</script>&amp;\x1b', headers=feed.accept)
    assert path.status_code == 404
    parsed = parse(path.data, feed.version)
    assert b"<script>" not in path.data
    assert parsed.feed.link.startswith('http://localhost/health/"><script>x</script>')


def test_the_service_id_names_the_feed_redacted(app: Flask) -> None:
    app.config["HEALTHCHECK_SERVICE_ID"] = "<b>billing</b> & token=abcdef123456"
    health = HealthCheck(app)
    health.add_check(lambda: True, name="db")
    response = app.test_client().get("/health", headers=ATOM)
    parsed = parse(response.data, "atom10")
    assert parsed.feed.title == "<b>billing</b> & token=***: pass"
    assert parsed.feed.author == "<b>billing</b> & token=***"
    assert b"abcdef123456" not in response.data


# -- status codes, HEAD, refusals ------------------------------------------------------


def test_status_codes_are_the_reports(app: Flask, feed: Feed) -> None:
    app.config["HEALTHCHECK_WARN_STATUS"] = 299
    health = HealthCheck(app)
    outcomes = Outcomes()
    health.add_check(outcomes, name="db")
    client = app.test_client()
    for letter, code in (("p", 200), ("w", 299), ("f", 500)):
        outcomes.next = letter
        response = client.get("/health", headers=feed.accept)
        assert response.status_code == code
        parse(response.data, feed.version)


def test_head_answers_like_get_without_a_body(client: FlaskClient, feed: Feed) -> None:
    response = client.head("/health", headers=feed.accept)
    assert response.status_code == 200
    assert response.data == b""
    assert response.mimetype == feed.accept["Accept"]
    assert response.headers["Cache-Control"] == "no-store"
    assert client.head("/health/nope", headers=feed.accept).status_code == 404


@pytest.mark.parametrize(
    ("method", "url", "code", "says"),
    [
        ("GET", "/health/nope", 404, "unknown check 'nope'"),
        ("GET", "/health?exclude=nope", 400, "unknown check 'nope'"),
        ("POST", "/health", 405, "the method POST is not allowed"),
        ("GET", "/health/", 404, "no check name after"),
    ],
)
def test_a_refusal_is_a_valid_feed_with_one_stable_entry(
    client: FlaskClient, method: str, url: str, code: int, says: str, feed: Feed
) -> None:
    response = client.open(url, method=method, headers=feed.accept)
    assert response.status_code == code
    assert response.mimetype == feed.accept["Accept"]
    assert response.headers["Cache-Control"] == "no-store"
    parsed = parse(response.data, feed.version)
    (entry,) = parsed.entries
    assert entry.title.startswith(f"Refused ({code}): ")
    assert says in entry.title
    assert parsed.feed.title == f"Health: refused ({code})"
    again = parse(
        client.open(url, method=method, headers=feed.accept).data, feed.version
    )
    assert again.entries[0].id == entry.id


# -- ?format= (the registry branch) ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mimetype", "version"),
    [
        ("rss", "application/rss+xml", "rss20"),
        ("atom", "application/atom+xml", "atom10"),
    ],
)
def test_format_names_the_feed(
    app: Flask, clock: Clock, db: Outcomes, name: str, mimetype: str, version: str
) -> None:
    client = app.test_client()
    run(client, clock, db, "pf")
    response = client.get(f"/health?format={name}", headers={"Accept": "text/html"})
    assert response.mimetype == mimetype
    assert response.status_code == 500
    assert response.headers["Cache-Control"] == "no-store"
    parsed = parse(response.data, version)
    assert titles(parsed)[0] == "Overall status: pass → fail"


@pytest.mark.parametrize("name", ["rss", "atom"])
def test_format_feeds_answer_head_and_refusals(client: FlaskClient, name: str) -> None:
    head = client.head(f"/health?format={name}")
    assert (head.status_code, head.data) == (200, b"")
    assert head.mimetype == f"application/{name}+xml"
    refused = client.get(f"/health/nope?format={name}")
    assert refused.status_code == 404
    parse(refused.data, f"{name}{'20' if name == 'rss' else '10'}")


# -- cost ------------------------------------------------------------------------------


def test_a_thousand_flapping_checks_give_a_bounded_feed(app: Flask) -> None:
    """360 results of 1,000 checks, each a change: the feed stays small. Its
    time is printed for the record (speed belongs in benchmarks/)."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    HealthCheck(app)
    clock = Clock(START)
    history = History(clock=clock)
    names = [f"check_{i}" for i in range(1_000)]
    for step in range(360):
        clock.advance(1)
        status: Status = "pass" if step % 2 else "fail"
        for name in names:
            history.record(CheckResult(name=name, status=status))
        history.record_overall(status)
    report = HealthReport.from_results([CheckResult(name=n) for n in names])
    with app.test_request_context("/health", headers=ATOM):
        started = time.perf_counter()
        context = RenderContext(
            True, get_state(app).settings, history=history.snapshot(names)
        )
        body = FORMATS["application/atom+xml"].render(report, context)
        elapsed = time.perf_counter() - started
    assert isinstance(body, str)
    parsed = parse(body.encode(), "atom10")
    assert len(parsed.entries) == MAX_ENTRIES
    assert titles(parsed)[0] == "Overall status: fail → pass"
    assert len(body) < 40_000
    print(f"\n1,000 checks x 360 results: Atom feed in {elapsed * 1000:.1f} ms")
