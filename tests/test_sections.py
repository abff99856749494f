"""``health.add_section``: py-healthcheck's custom sections, shown with
details in health+json, the status page and ``text/plain``, never in the
clearskies envelope."""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_talisman import Talisman

from flask_healthcheck import ConfigurationError, HealthCheck
from flask_healthcheck.sections import MAX_ITEMS, RESERVED_NAMES

from .browser import DESKTOP, Browser, serve_wsgi
from .gunicorn import StartGunicorn
from .helpers import SUCCESS, Bounded, live_app
from .processes import http_get
from .test_browser import csp_violations
from .test_gevent import require_gevent
from .test_html import Page

HEALTH_JSON = {"Accept": "application/health+json"}
HTML = {"Accept": "text/html"}
TEXT = {"Accept": "text/plain"}
#: The formats that show sections, by the Accept header asking for them.
SHOWING = {"health+json": HEALTH_JSON, "html": HTML, "text": TEXT}

#: A password in a URL, found by pattern; a config secret, found literally.
URL_SECRET = "hunter22"
URL = f"postgresql://app:{URL_SECRET}@db.internal/app"
CONFIG_SECRET = "c0nfig-s3cret-value"


def body(app: Flask, headers: dict[str, str], url: str = "/health") -> str:
    response = app.test_client().get(url, headers=headers)
    return response.get_data(as_text=True)


def sections_of(app: Flask, url: str = "/health") -> dict[str, Any]:
    """The sections of the health+json document: its keys but its own."""
    document = json.loads(body(app, HEALTH_JSON, url))
    return {k: v for k, v in document.items() if k not in RESERVED_NAMES}


def counted(calls: list[int], value: Any) -> Callable[[], Any]:
    """A section returning ``value`` that counts its calls in ``calls``."""

    def section() -> Any:
        calls.append(1)
        return value

    return section


@pytest.fixture
def detailed(app: Flask) -> Flask:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    return app


def test_a_section_shows_in_health_json(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    health.add_check(lambda: True, name="database")
    health.add_section("build", lambda: {"commit": "4f2a9c1", "dirty": False})
    health.add_section("workers", lambda: 4)
    document = json.loads(body(detailed, HEALTH_JSON))
    assert document["status"] == "pass"
    assert list(document["checks"]) == ["database"]
    assert document["build"] == {"commit": "4f2a9c1", "dirty": False}
    assert document["workers"] == 4


@pytest.mark.parametrize("fmt", SHOWING)
def test_secrets_in_every_field_are_redacted(detailed: Flask, fmt: str) -> None:
    detailed.config.update(DATABASE_PASSWORD=CONFIG_SECRET)
    health = HealthCheck(detailed)
    health.add_check(lambda: True, name="database")

    def everywhere() -> dict[str, Any]:
        return {
            "url": URL,
            "config": f"the password is {CONFIG_SECRET}",
            "password": "plain-but-under-a-secret-key",
            "nested": {"deeper": [URL, {"token": "abc123456789"}], URL: "a key"},
            "list": [CONFIG_SECRET, (URL,), {CONFIG_SECRET}],
        }

    def raising() -> None:
        raise ConnectionError(f"could not connect to {URL} with {CONFIG_SECRET}")

    health.add_section("everywhere", everywhere)
    health.add_section("raising", raising)
    health.add_section(f"named {URL}", lambda: "a secret in the name")
    text = body(detailed, SHOWING[fmt])
    for secret in (URL_SECRET, CONFIG_SECRET, "plain-but-under", "abc123456789"):
        assert secret not in text
    # What is shown is there, only blanked.
    assert "postgresql://app:***@db.internal/app" in text
    assert "ConnectionError: could not connect to" in text
    assert "a secret in the name" in text
    assert "everywhere" in text


def test_the_redacted_value_keeps_its_shape(detailed: Flask) -> None:
    detailed.config.update(DATABASE_PASSWORD=CONFIG_SECRET)
    health = HealthCheck(detailed)
    health.add_section(
        "value",
        lambda: {"password": "x", "nested": {"dsn": URL, "ok": [1, 2.5, None, True]}},
    )
    assert sections_of(detailed)["value"] == {
        "password": "***",
        "nested": {"dsn": "***", "ok": [1, 2.5, None, True]},
    }


def test_what_json_cannot_carry_shows_as_its_text(detailed: Flask) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise SystemExit("no")

    health = HealthCheck(detailed)
    moment = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    health.add_section(
        "odd",
        lambda: {
            "when": moment,
            "nan": float("nan"),
            "big": 10**2000,
            "set": {3},
            1: "an int key",
            "object": Unprintable(),
            "url": f"<{URL}>",
        },
    )
    health.add_section("plain", lambda: Unprintable())
    shown = sections_of(detailed)
    assert shown["odd"] == {
        "when": "2024-05-01 12:00:00+00:00",
        "nan": "nan",
        "big": "<an int of 6644 bits>",
        "set": [3],
        "1": "an int key",
        "object": "<a Unprintable that can't be shown>",
        "url": "<postgresql://app:***@db.internal/app>",
    }
    assert shown["plain"] == "<a Unprintable that can't be shown>"


def test_a_value_is_bounded(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    health.add_section("many", lambda: list(range(100_000)))
    health.add_section("long", lambda: "x" * 1_000_000)
    deep: list[Any] = []
    for _ in range(1000):
        deep = [deep]
    health.add_section("deep", lambda: deep)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    health.add_section("loop", lambda: loop)
    shown = sections_of(detailed)
    assert len(shown["many"]) == MAX_ITEMS and shown["many"][-1] == "..."
    assert len(shown["long"]) < 1000
    assert len(json.dumps(shown["deep"])) < 200
    assert json.dumps(shown["loop"]).count("self") == 8


@pytest.mark.parametrize("fmt", [*SHOWING, "json"])
def test_absent_without_details(app: Flask, fmt: str) -> None:
    calls: list[int] = []
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    health.add_section("build", counted(calls, {"commit": "4f2a9c1"}))
    headers = SHOWING.get(fmt, {"Accept": "application/json"})
    text = body(app, headers)
    assert "build" not in text and "4f2a9c1" not in text
    assert not calls, "a section ran for a response that doesn't show it"


def envelope_bytes(app: Flask, headers: dict[str, str]) -> bytes:
    return app.test_client().get("/health", headers=headers).get_data()


@pytest.mark.parametrize("details", [False, True])
@pytest.mark.parametrize(
    "headers", [{}, {"Accept": "*/*"}, {"Accept": "application/json"}]
)
def test_the_envelope_stays_byte_for_byte(
    details: bool, headers: dict[str, str]
) -> None:
    """No check, so even the details envelope has no durations: the bytes
    with sections are those without."""
    answers = []
    calls: list[int] = []
    for sections in (False, True):
        app = Flask(__name__)
        app.config.update(TESTING=True, HEALTHCHECK_SHOW_DETAILS=details)
        health = HealthCheck(app)
        if sections:
            health.add_section("build", counted(calls, {"commit": "x"}))
        answers.append(envelope_bytes(app, headers))
    assert not calls
    assert answers[0] == answers[1]
    if not details:
        assert answers[0] == (
            b'{"status": "success", "error": "", "data": {},'
            b' "pagination": {}, "input_errors": {}}'
        )


@pytest.fixture
def hang() -> Iterator[threading.Event]:
    released = threading.Event()
    yield released
    released.set()


def answer_in_time(
    app: Flask, headers: dict[str, str], within: float = 30.0
) -> tuple[int, str]:
    """The answer to a request, which must come (generously bounded)."""
    answers: list[tuple[int, str]] = []

    def ask() -> None:
        response = app.test_client().get("/health", headers=headers)
        answers.append((response.status_code, response.get_data(as_text=True)))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(within)
    assert answers, f"no answer within {within} s"
    return answers[0]


def test_a_hung_section_answers_at_its_timeout_and_is_not_started_again(
    detailed: Flask, hang: threading.Event
) -> None:
    detailed.config.update(HEALTHCHECK_TIMEOUT=0.3)
    health = HealthCheck(detailed)
    health.add_check(lambda: True, name="database")
    started: list[int] = []

    def stuck() -> str:
        started.append(1)
        hang.wait(60)
        return "done"

    health.add_section("stuck", stuck)
    health.add_section("fine", lambda: "ok")
    code, text = answer_in_time(detailed, HEALTH_JSON)
    assert code == 200
    document = json.loads(text)
    assert document["stuck"] == "timed out after 0.3 s"
    assert document["fine"] == "ok"
    assert document["checks"]["database"][0]["status"] == "pass"
    for headers in (HEALTH_JSON, TEXT, HTML):
        code, text = answer_in_time(detailed, headers)
        assert code == 200
        assert "not started again" in text
    assert len(started) == 1
    hang.set()
    pool = detailed.extensions["healthcheck"].runner.pool
    deadline = time.monotonic() + 10
    while sections_of(detailed)["stuck"] != "done":
        assert time.monotonic() < deadline, "the section never ran again"
        time.sleep(0.05)
    assert len(started) == 2
    assert pool.thread_count <= 3


def test_a_hung_section_and_a_hung_check_wait_together(
    detailed: Flask, hang: threading.Event
) -> None:
    """Sections run while the checks do: the answer waits for the slower
    of them, not for both one after the other (generous bound)."""
    detailed.config.update(HEALTHCHECK_TIMEOUT=1.0)
    health = HealthCheck(detailed)
    health.add_check(lambda: hang.wait(60), name="database")
    health.add_section("stuck", lambda: hang.wait(60))
    code, text = answer_in_time(detailed, HEALTH_JSON)
    assert code == 500
    document = json.loads(text)
    assert document["stuck"] == "timed out after 1 s"
    assert document["checks"]["database"][0]["output"] == "timed out after 1 s"


@pytest.mark.parametrize(
    "error", [SystemExit, KeyboardInterrupt, GeneratorExit, RuntimeError]
)
def test_a_section_that_raises_shows_why_and_logs(
    detailed: Flask, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthCheck(detailed)
    health.add_check(lambda: True, name="database")

    def raising() -> None:
        raise error(f"while reading {URL}")

    health.add_section("raising", raising)
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        shown = sections_of(detailed)
        again = sections_of(detailed)
    name = error.__name__
    assert shown["raising"].startswith(f"{name}: ")
    assert "postgresql://app:***@db.internal/app" in shown["raising"]
    assert again["raising"].startswith(f"{name}: ")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "the same failure is a WARNING once"
    assert f"Health section 'raising' of app {detailed.name!r} failed" in (
        warnings[0].getMessage()
    )
    assert warnings[0].exc_text and "Traceback" in warnings[0].exc_text
    assert URL_SECRET not in caplog.text


def test_parameters_are_injected_like_a_check_s(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    torn_down: list[str] = []

    @health.service("queue")
    def queue(config: Any) -> Iterator[dict[str, int]]:
        yield {"length": config["QUEUE_LENGTH"]}
        torn_down.append("queue")

    detailed.config["QUEUE_LENGTH"] = 7

    def queues(queue: dict[str, int], app: Flask, config: Any) -> dict[str, Any]:
        return {"app": app.name, "length": queue["length"], "debug": config["DEBUG"]}

    health.add_section("queues", queues)
    assert sections_of(detailed)["queues"] == {
        "app": detailed.name,
        "length": 7,
        "debug": False,
    }
    assert torn_down == ["queue"]


def test_an_async_section(detailed: Flask) -> None:
    health = HealthCheck(detailed)

    async def pending_jobs() -> int:
        return 3

    health.add_section("jobs", pending_jobs)
    assert sections_of(detailed)["jobs"] == 3


def test_an_unknown_parameter_fails_like_a_check_s(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    health.add_check(lambda: True, name="database")
    health.add_section("queues", lambda queu: queu)
    response = detailed.test_client().get("/health", headers=HEALTH_JSON)
    assert response.status_code == 500
    output = json.loads(response.get_data())["checks"]["configuration"][0]["output"]
    assert "section 'queues' needs 'queu'" in output
    with detailed.app_context(), pytest.raises(ConfigurationError, match="'queu'"):
        detailed.extensions["healthcheck"].start_sections()


def test_a_section_added_after_init_app_and_before(detailed: Flask) -> None:
    health = HealthCheck()
    health.add_section("before", lambda: 1)
    health.init_app(detailed)
    health.add_section("after", lambda: 2)
    shown = sections_of(detailed)
    assert shown == {"before": 1, "after": 2}


def test_two_apps(detailed: Flask) -> None:
    other = Flask("other")
    other.config.update(TESTING=True, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck()
    health.init_app(detailed)
    health.init_app(other)
    health.add_section("app", lambda app: app.name)
    health.add_section("own", lambda: "only here", app=other)
    assert sections_of(detailed) == {"app": detailed.name}
    assert sections_of(other) == {"app": "other", "own": "only here"}


def test_runs_inline_without_threads(detailed: Flask) -> None:
    detailed.config.update(HEALTHCHECK_THREADS=False)
    health = HealthCheck(detailed)
    health.add_section("thread", lambda: threading.current_thread().name)
    request_thread: list[str] = []

    @detailed.after_request
    def note(response: Any) -> Any:
        request_thread.append(threading.current_thread().name)
        return response

    assert sections_of(detailed)["thread"] == request_thread[0]


def test_shown_on_failing_and_warning_reports(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    health.add_check(lambda: False, name="database")
    health.add_check(lambda: False, name="search", critical=False)
    health.add_section("build", lambda: "4f2a9c1")
    assert sections_of(detailed)["build"] == "4f2a9c1"
    response = detailed.test_client().get("/health/search", headers=HEALTH_JSON)
    assert response.status_code == 200
    assert json.loads(response.get_data())["build"] == "4f2a9c1"


def test_the_status_page_lists_them_escaped_under_its_strict_policy(
    detailed: Flask,
) -> None:
    health = HealthCheck(detailed)
    health.add_section("<b>name</b>", lambda: {"html": "<script>alert(1)</script>"})
    response = detailed.test_client().get("/health", headers=HTML)
    page = Page(response.get_data(as_text=True))
    assert not page.find("script") and not page.find("b")
    assert page.find("section", **{"class": "sections"})
    assert "&lt;b&gt;name&lt;/b&gt;" in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    for _, attrs in page.tags:
        assert "style" not in attrs
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_errors_show_no_sections(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    calls: list[int] = []
    health.add_section("build", counted(calls, "4f2a9c1"))
    for headers in SHOWING.values():
        response = detailed.test_client().get("/health/nope", headers=headers)
        assert response.status_code == 404
        assert "4f2a9c1" not in response.get_data(as_text=True)
    assert not calls


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", "non-empty string"),
        (3, "non-empty string"),
        *((reserved, "health\\+json") for reserved in sorted(RESERVED_NAMES)),
    ],
)
def test_a_bad_name_fails_at_registration(app: Flask, name: Any, match: str) -> None:
    health = HealthCheck(app)
    with pytest.raises(ConfigurationError, match=match):
        health.add_section(name, lambda: 1)


def test_a_bad_func_fails_at_registration(app: Flask) -> None:
    health = HealthCheck(app)
    with pytest.raises(ConfigurationError, match="func of section 'x' must be"):
        health.add_section("x", "not callable")  # type: ignore[arg-type]

    def positional_only(a: int, /) -> int:
        return a

    with pytest.raises(ConfigurationError, match="positional-only"):
        health.add_section("x", positional_only)


def test_a_taken_name_fails_at_registration(app: Flask) -> None:
    health = HealthCheck()
    health.add_section("build", lambda: 1)
    with pytest.raises(ConfigurationError, match="'build' is already registered"):
        health.add_section("build", lambda: 2)
    health.init_app(app)
    with pytest.raises(ConfigurationError, match="'build' is already registered"):
        health.add_section("build", lambda: 2, app=app)
    health.add_section("own", lambda: 1, app=app)
    with pytest.raises(ConfigurationError, match="'own' is already registered"):
        health.add_section("own", lambda: 2)


@pytest.mark.parametrize("fmt", SHOWING)
def test_format_parameter_shows_them(detailed: Flask, fmt: str) -> None:
    health = HealthCheck(detailed)
    health.add_section("build", lambda: "4f2a9c1")
    response = detailed.test_client().get(f"/health?format={fmt}")
    assert response.mimetype == SHOWING[fmt]["Accept"]
    assert "4f2a9c1" in response.get_data(as_text=True)


def test_format_json_shows_the_envelope_without_them(detailed: Flask) -> None:
    health = HealthCheck(detailed)
    health.add_section("build", lambda: "4f2a9c1")
    response = detailed.test_client().get("/health?format=json", headers=HEALTH_JSON)
    assert response.mimetype == "application/json"
    assert "4f2a9c1" not in response.get_data(as_text=True)


# -- under a real gunicorn -k gevent -------------------------------------------

GEVENT_APP = (
    live_app(TIMEOUT=1.0, SHOW_DETAILS=True)
    + """
import sqlite3


def rows():
    # Blocks in C (sqlite3's busy handler) while another process holds the lock.
    with sqlite3.connect(os.environ["DATABASE"], timeout=12.0) as db:
        return db.execute("SELECT count(*) FROM t").fetchone()[0]


health.add_section("rows", rows)
"""
)


def test_a_section_blocked_in_c_never_blocks_the_hub(
    gunicorn_server: StartGunicorn, tmp_path: Path
) -> None:
    """The section runs on a real thread and the request waits for it
    cooperatively: ``/livez`` answers meanwhile, ``/health`` at the
    section's timeout (bounds generous: a blocked hub takes 12 s)."""
    require_gevent()
    database = tmp_path / "app.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    server = gunicorn_server(
        GEVENT_APP, worker_class="gevent", env={"DATABASE": str(database)}
    )
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        health = Bounded(
            lambda: http_get(server.port, "/health", 20, HEALTH_JSON), "GET /health"
        )
        time.sleep(0.3)  # the section is now blocked in C
        live = server.get("/livez", 5)
        answer = health.result(20, "GET /health")
    finally:
        holder.rollback()
        holder.close()
    assert live is not None and live.status == 200, server.tail()
    assert answer is not None and answer.status == 200, server.tail()
    assert answer.seconds < 8, answer
    assert json.loads(answer.body)["rows"] == "timed out after 1 s"


def test_the_status_page_shows_them_styled_under_talisman(
    browser: Browser, tmp_path: Path
) -> None:
    """In headless Chromium, under Flask-Talisman's ``default-src 'self'``:
    the sections block is styled by the page's own stylesheet, and the
    browser blocks nothing."""
    app = Flask("talisman")
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True, HEALTHCHECK_HTML_REFRESH=0)
    Talisman(app)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="cache")
    health.add_section("build", lambda: {"commit": "4f2a9c1", "dsn": URL})
    browser.set_window_size(*DESKTOP)
    with serve_wsgi(app) as url, csp_violations(browser) as violations:
        browser.open(f"{url}/health")
        text = browser.visible_text()
        assert "Sections" in text and '"commit": "4f2a9c1"' in text
        assert '"dsn": "***"' in text and URL_SECRET not in text
        assert browser.computed_style(".sections pre", "white-space") == "pre-wrap"
        time.sleep(0.3)  # the icon loads after the page
        assert violations() == []
        browser.screenshot(tmp_path / "sections.png")


def test_sections_added_while_requests_run(app: Flask) -> None:
    """``add_section`` on a serving app never fails a request nor a check:
    the app's sections are revalidated after each, while other threads
    read them (the GIL switches threads every microsecond here, so that a
    read torn by an add would show)."""
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    for number in range(300):
        health.add_section(f"own{number}", lambda: 1, app=app)
    answers: list[tuple[int, bytes]] = []
    done = threading.Event()

    def probe() -> None:
        client = app.test_client()
        while not done.is_set():
            response = client.get("/health")
            answers.append((response.status_code, response.data))

    probes = [threading.Thread(target=probe) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in probes:
            thread.start()
        for number in range(200):
            health.add_section(f"added{number}", lambda: 1, app=app)
            time.sleep(0.001)
    finally:
        done.set()
        for thread in probes:
            thread.join(timeout=30)
        sys.setswitchinterval(interval)
    assert answers
    assert {answer for answer in answers} == {(200, SUCCESS)}


@pytest.mark.parametrize("fmt", SHOWING)
def test_a_section_named_like_a_secret_is_masked(detailed: Flask, fmt: str) -> None:
    """A section's name is its key, as a dict's keys are in its value: a
    secret-looking one (``api_token``) masks what it shows, as
    ``{"api_token": ...}`` inside a section's value is masked."""
    health = HealthCheck(detailed)
    health.add_section("api_token", lambda: "tok-plain-value-1234")
    health.add_section("DB_PASSWORD", lambda: {"anything": "plain-value-5678"})
    health.add_section("build", lambda: {"token": "plain-value-9999", "commit": "4f2a"})
    text = body(detailed, SHOWING[fmt])
    for secret in ("tok-plain-value-1234", "plain-value-5678", "plain-value-9999"):
        assert secret not in text
    assert "api_token" in text
    assert "4f2a" in text
    if fmt == "health+json":
        shown = sections_of(detailed)
        assert shown["api_token"] == shown["DB_PASSWORD"] == "***"


@pytest.mark.parametrize("fmt", SHOWING)
def test_a_lone_surrogate_keeps_the_format(detailed: Flask, fmt: str) -> None:
    """File names that aren't UTF-8 (``os.listdir``) hold lone surrogates,
    which UTF-8 can't encode: in a value, a key or a name they show as
    their escape, and the answer keeps its format (the page and the text
    fell back to the envelope)."""
    name = os.fsdecode(b"report-\xff.csv")
    health = HealthCheck(detailed)
    health.add_section("files", lambda: {"newest": name, name: 1})
    health.add_section(f"{name} size", lambda: 12)
    response = detailed.test_client().get("/health", headers=SHOWING[fmt])
    assert response.status_code == 200
    assert response.mimetype == SHOWING[fmt]["Accept"]
    text = response.get_data(as_text=True)
    assert "\\udcff" in text
    assert "\udcff" not in text
