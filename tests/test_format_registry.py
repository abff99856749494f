"""The one format registry: negotiation, ``?format=``, 406, HEAD and the
headers for every format, and ``health.add_format``."""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from flask import Flask, Response
from werkzeug.test import TestResponse
from werkzeug.utils import get_content_type

from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck, HealthReport
from flask_healthcheck.format_registry import BUILT_IN, MAX_ACCEPT_HEADERS
from flask_healthcheck.formats import Format
from flask_healthcheck.state import get_state

from .children import in_child
from .helpers import FAILURE, REFUSALS, SUCCESS

JSON = "application/json"
HEALTH_JSON = "application/health+json"
HTML = "text/html"
SECRET = "hunter22-very-secret"


def get(
    app: Flask, url: str = "/health", accept: str | None = None, method: str = "GET"
) -> TestResponse:
    headers = {} if accept is None else {"Accept": accept}
    return app.test_client().open(url, method=method, headers=headers)


def to_csv(report: HealthReport, details: bool) -> str:
    """The docs' example: the overall status, then a row per check."""
    rows: list[tuple[str, str]] = [("health", report.status)]
    if details:
        rows += [(r.name, r.error or r.status) for r in report.checks]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    """One passing check, one tagged ``live``, and ``/livez``."""
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process", tags=["live"])
    health.add_check(lambda: True, name="database")
    return health


def another_app(name: str) -> Flask:
    """Another app, set up as the ``app`` fixture is."""
    app = Flask(name)
    app.config.update(TESTING=True)
    return app


def names(app: Flask) -> str:
    with app.app_context():
        return ", ".join(get_state().formats().names)


# -- negotiation: Accept, ?format=, HEAD -----------------------------------------


@pytest.mark.parametrize(
    ("accept", "query", "mimetype"),
    [
        (None, "", JSON),
        ("*/*", "", JSON),
        ("image/png", "", JSON),
        (HEALTH_JSON, "", HEALTH_JSON),
        ("application/xhtml+xml", "", HTML),
        ("text/html;q=0.1, application/health+json;q=0.5", "", HEALTH_JSON),
        ("text/html;q=0, */*", "", JSON),
        ("text/html;level=1;q=0.5, application/json;q=0.4", "", HTML),
        ("application/health+json; charset=utf-8", "", HEALTH_JSON),
        ("text/csv;header=present, */*;q=0.1", "", JSON),
        (None, "?format=json", JSON),
        (None, "?format=health%2Bjson", HEALTH_JSON),
        (None, "?format=health+json", HEALTH_JSON),  # a '+' typed as is
        (None, "?format=html", HTML),
        (HTML, "?format=json", JSON),
        (JSON, "?format=html", HTML),
        ("image/png", "?format=health%2Bjson", HEALTH_JSON),
        (HEALTH_JSON, "?format=", HEALTH_JSON),  # empty: Accept decides
        (HTML, "?format=json&format=html", JSON),  # the first one
        (None, "?exclude=database&format=html", HTML),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_accept_and_format_choose_the_format(
    app: Flask,
    health: HealthCheck,
    accept: str | None,
    query: str,
    mimetype: str,
    method: str,
) -> None:
    response = get(app, "/health" + query, accept, method)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Accept"
    if method == "HEAD":
        assert response.data == b""
        assert int(response.headers["Content-Length"]) > 0
        if mimetype != HTML:  # the page shows one run more each time
            length = len(get(app, "/health" + query, accept).data)
            assert response.headers["Content-Length"] == str(length)


@pytest.mark.parametrize(
    "format", ["json", "health%2Bjson", "html", "text", "openmetrics", "rss", "csv"]
)
def test_every_answer_has_its_formats_headers_in_order(
    app: Flask, health: HealthCheck, format: str
) -> None:
    """The no-store and Vary headers, the format's own, its Content-Type
    and the length: worked out once per format, the same on every answer
    (a 405 adds its Allow before the Content-Type)."""
    health.add_format("text/csv", to_csv)
    chosen = get_state(app).formats().names[format.replace("%2B", "+")]
    content_type = chosen.content_type or get_content_type(chosen.mimetype, "utf-8")
    for _ in range(2):  # the first answer in the format and a later one
        response = get(app, f"/health?format={format}")
        assert response.status_code == 200
        assert response.headers.to_wsgi_list() == [
            ("Cache-Control", "no-store"),
            ("Vary", "Accept"),
            *chosen.headers.items(),
            ("Content-Type", content_type),
            ("Content-Length", str(len(response.data))),
        ]
    refused = get(app, f"/health?format={format}", method="POST")
    assert refused.status_code == 405
    assert [name for name, _ in refused.headers.to_wsgi_list()] == [
        "Cache-Control",
        "Vary",
        *chosen.headers,
        "Allow",
        "Content-Type",
        "Content-Length",
    ]


@pytest.mark.parametrize("format", ["json", "html", "text", "openmetrics"])
def test_a_hook_that_changes_an_answers_headers_changes_no_other(
    app: Flask, health: HealthCheck, format: str
) -> None:
    """Each answer has headers of its own: an ``after_request`` hook that
    adds, replaces and removes some (Talisman, CORS) changes that answer's,
    not those worked out once for the format (a ``Headers`` object shared
    by every answer would be changed in place)."""

    @app.after_request
    def change(response: Response) -> Response:
        response.headers.add("Vary", "Origin")
        response.headers["Content-Type"] = "text/x-changed"
        response.headers.remove("Cache-Control")
        response.headers.extend([("X-Hook", "1")])
        return response

    def headers(url: str) -> list[tuple[str, str]]:
        answer = get(app, url).headers
        return [h for h in answer.to_wsgi_list() if h[0] != "Content-Length"]

    expected = headers(f"/health?format={format}")  # the page's length varies
    assert ("X-Hook", "1") in expected
    assert "Cache-Control" not in dict(expected)
    for url in [f"/health?format={format}", f"/livez?format={format}"]:
        assert headers(url) == expected
    chosen = get_state(app).formats().names[format]
    assert ("Cache-Control", "no-store") in chosen.response_headers
    assert ("X-Hook", "1") not in chosen.response_headers


class HeldHeaders(Mapping[str, str]):
    """A format's own headers that keep whoever reads them until
    ``release`` is set, and say so in ``reading``: a thread caught in the
    middle of working out a format's headers."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.release = threading.Event()

    def __getitem__(self, name: str) -> str:
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        self.reading.set()
        self.release.wait(30)
        return iter(())

    def __len__(self) -> int:
        return 0


@pytest.mark.parametrize("how", ["os.fork", "libc fork"])
def test_a_fork_while_a_format_is_worked_out_leaves_no_lock_held(
    app: Flask, health: HealthCheck, how: str
) -> None:
    """A server that forks while another thread works out some format's
    headers (its first answer in it): the child answers in every format.
    A lock taken for that work (3.11's ``cached_property`` has one for all
    formats) would be held forever in the child, by a thread it has not."""
    health.add_format("text/csv", to_csv)  # answered first in the child
    held = HeldHeaders()

    def work_out() -> object:  # a format made and answered in, in a thread
        return Format(
            "text/x-slow", lambda *_: "", lambda *_: "", held
        ).response_headers

    worker = threading.Thread(target=work_out)
    worker.start()
    try:
        assert held.reading.wait(10)

        def answer_in_csv() -> int:
            return get(app, "/health?format=csv").status_code

        assert in_child(how, answer_in_csv) == 200
    finally:
        held.release.set()
        worker.join(10)


def test_each_accept_header_keeps_its_answer(app: Flask, health: HealthCheck) -> None:
    """The registry remembers what each Accept header was answered with
    (a client sends the same one every time), for a bounded number of
    headers: answers stay right in any order, and past the bound."""
    asked = {
        None: JSON,
        "*/*": JSON,
        "image/png": JSON,
        HEALTH_JSON: HEALTH_JSON,
        "application/xhtml+xml": HTML,
        "text/html;q=0, */*": JSON,
        "application/health+json; charset=utf-8": HEALTH_JSON,
    }
    odd = [f"application/x-{i}, {HTML};q=0.5" for i in range(2 * MAX_ACCEPT_HEADERS)]
    for _ in range(2):
        for accept, mimetype in [*asked.items(), *reversed(asked.items())]:
            assert get(app, accept=accept).mimetype == mimetype, accept
        for accept in odd:
            assert get(app, accept=accept).mimetype == HTML, accept
    with app.app_context():
        assert len(get_state().formats()._by_accept) <= MAX_ACCEPT_HEADERS


def test_a_huge_accept_header_is_answered_not_kept(
    app: Flask, health: HealthCheck
) -> None:
    """An attacker's megabyte-long Accept headers, each another: the
    registry kept every one as a key, 64 MB for as long as the app ran."""
    for i in range(8):
        huge = f"application/x-{i}-{'a' * 1_000_000}, {HTML};q=0.5"
        assert get(app, accept=huge).mimetype == HTML
    assert get(app, accept=HEALTH_JSON).mimetype == HEALTH_JSON
    with app.app_context():
        kept = get_state().formats()._by_accept
    assert sum(len(header or "") for header in kept) < 64 * 1024


@pytest.mark.parametrize("accept", [None, "*/*", JSON, "image/png", "text/csv"])
@pytest.mark.parametrize("query", ["", "?format=json"])
def test_the_envelope_is_byte_for_byte_clearskies(
    app: Flask, accept: str | None, query: str
) -> None:
    health = HealthCheck(app)
    failing = {"value": False}
    health.add_check(lambda: not failing["value"], name="switch")
    response = get(app, "/health" + query, accept)
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert response.content_type == JSON
    failing["value"] = True
    response = get(app, "/health" + query, accept)
    assert (response.status_code, response.data) == (500, FAILURE)


def test_format_runs_the_same_checks(app: Flask) -> None:
    """``?format=`` is no ``?exclude=``: every check still runs."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process")
    health.add_check(lambda: False, name="database")
    for query in ("", "?format=json", "?format=health+json"):
        body = get(app, "/health" + query).json
        assert body is not None
        checks = body["data"]["checks"] if "data" in body else body["checks"]
        assert sorted(checks) == ["database", "process"], query


# -- 406: a ?format= that names no format ---------------------------------------


@pytest.mark.parametrize("url", ["/health", "/livez", "/health/process"])
@pytest.mark.parametrize("accept", [None, HTML, HEALTH_JSON])
def test_an_unknown_format_is_a_406_in_the_envelope(
    app: Flask, health: HealthCheck, url: str, accept: str | None
) -> None:
    response = get(app, url + "?format=xml", accept)
    assert response.status_code == 406
    assert response.content_type == JSON
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Accept"
    message = f"unknown format 'xml'; one of: {names(app)}"
    assert (
        response.data
        == json.dumps(
            {
                "status": "failure",
                "error": "",
                "data": [],
                "pagination": {},
                "input_errors": {"format": message},
            }
        ).encode()
    )
    head = get(app, url + "?format=xml", accept, "HEAD")
    assert (head.status_code, head.data) == (406, b"")


def test_the_406_names_formats_in_registry_order(
    app: Flask, health: HealthCheck
) -> None:
    assert names(app).startswith("json, health+json, html")
    health.add_format("text/csv", to_csv)
    errors = get(app, "/health?format=XML").json["input_errors"]  # type: ignore[index]
    assert errors == {"format": f"unknown format 'XML'; one of: {names(app)}"}
    assert errors["format"].endswith(", csv")


def test_a_long_unknown_format_is_cut(app: Flask, health: HealthCheck) -> None:
    response = get(app, "/health?format=" + "x" * 100_000)
    assert response.status_code == 406
    assert len(response.data) < 500


def test_an_unknown_format_runs_no_check(app: Flask) -> None:
    health = HealthCheck(app)
    runs: list[int] = []

    @health.check
    def counted() -> None:
        runs.append(1)

    assert get(app, "/health?format=nope").status_code == 406
    assert get(app, "/health?format=json").status_code == 200
    assert runs == [1]


@pytest.mark.parametrize(
    ("method", "url", "code", "field"),
    [
        ("POST", "/health", 405, "method"),
        ("GET", "/health/", 404, "check"),
    ],
)
def test_a_refusal_with_an_unknown_format_says_both(
    app: Flask, health: HealthCheck, method: str, url: str, code: int, field: str
) -> None:
    response = get(app, url + "?format=nope", HTML, method)
    assert response.status_code == code
    assert response.content_type == JSON
    errors = response.json["input_errors"]  # type: ignore[index]
    assert set(errors) == {field, "format"}


@pytest.mark.parametrize("query", ["?format=xml", "?format=html"])
def test_history_and_assets_keep_their_own_format(
    app: Flask, health: HealthCheck, query: str
) -> None:
    """Not negotiated: ``?format=`` changes only their refusals."""
    history = get(app, "/health/history" + query)
    assert (history.status_code, history.mimetype) == (200, JSON)
    css = get(app, "/health/status.css" + query)
    assert (css.status_code, css.mimetype) == (200, "text/css")


# -- refusals follow ?format= ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "code"),
    [
        *REFUSALS,
        ("DELETE", "/livez", 405),
        ("GET", "/health/history?limit=x", 400),
    ],
)
@pytest.mark.parametrize(("name", "mimetype"), [("health%2Bjson", HEALTH_JSON)])
def test_refusals_answer_in_the_format_asked_for(
    app: Flask,
    health: HealthCheck,
    method: str,
    url: str,
    code: int,
    name: str,
    mimetype: str,
) -> None:
    separator = "&" if "?" in url else "?"
    response = get(app, f"{url}{separator}format={name}", JSON, method)
    assert (response.status_code, response.mimetype) == (code, mimetype)
    assert response.headers["Cache-Control"] == "no-store"
    html = get(app, f"{url}{separator}format=html", JSON, method)
    assert (html.status_code, html.mimetype) == (code, HTML)
    assert "Content-Security-Policy" in html.headers
    if code == 405:
        assert html.headers["Allow"] == "GET, HEAD"


# -- add_format --------------------------------------------------------------------


def test_add_format_before_init_app_serves_every_app() -> None:
    health = HealthCheck()
    health.add_format("text/csv", to_csv)
    apps = [another_app(f"app{i}") for i in range(2)]
    for app in apps:
        health.init_app(app)
        health.add_check(lambda: True, name="process", app=app)
    for app in apps:
        by_accept = get(app, accept="text/csv")
        assert by_accept.content_type == "text/csv; charset=utf-8"
        assert by_accept.data == b"health,pass\r\n"
        assert get(app, "/health?format=csv").data == b"health,pass\r\n"


def test_add_format_after_init_app(app: Flask, health: HealthCheck) -> None:
    assert get(app, accept="text/csv").mimetype == JSON
    assert get(app, "/health?format=csv").status_code == 406
    health.add_format("text/csv", to_csv)
    assert get(app, accept="text/csv").data == b"health,pass\r\n"
    assert get(app, "/health?format=csv").data == b"health,pass\r\n"


def test_add_format_for_one_app(app: Flask) -> None:
    health = HealthCheck()
    other = another_app("other")
    health.init_app(app)
    health.init_app(other)
    health.add_format("text/csv", to_csv, app=app)
    assert get(app, "/health?format=csv").status_code == 200
    assert get(other, "/health?format=csv").status_code == 406


def test_a_name_of_its_own(app: Flask, health: HealthCheck) -> None:
    health.add_format("application/vnd.acme.health+csv", to_csv, name="acme")
    response = get(app, "/health?format=acme")
    assert response.mimetype == "application/vnd.acme.health+csv"
    assert get(app, accept="application/vnd.acme.health+csv").data == response.data
    # Parameters are not matched (Prometheus sends ``;version=1.0.0``).
    accept = "application/vnd.acme.health+csv;version=2.0, */*;q=0.1"
    assert get(app, accept=accept).mimetype == "application/vnd.acme.health+csv"


def test_replacing_the_envelope(app: Flask, health: HealthCheck) -> None:
    """py-healthcheck's ``success_handler``: the body is the user's, for
    every client that asks for nothing in particular too."""
    health.add_format(JSON, lambda report, details: f'{{"ok": "{report.status}"}}')
    for accept, query in [
        (None, ""),
        ("*/*", ""),
        ("image/png", ""),
        (HTML, "?format=json"),
    ]:
        response = get(app, "/health" + query, accept)
        assert (response.status_code, response.data) == (200, b'{"ok": "pass"}')
        assert response.content_type == JSON
        assert response.headers["Cache-Control"] == "no-store"
    assert get(app, accept=HEALTH_JSON).mimetype == HEALTH_JSON  # the others stay


def test_replacing_the_page_keeps_its_name_and_alias(
    app: Flask, health: HealthCheck
) -> None:
    health.add_format(HTML, lambda report, details: f"<p>{report.status}</p>")
    for accept, query in [
        (HTML, ""),
        ("application/xhtml+xml", ""),
        (None, "?format=html"),
    ]:
        response = get(app, "/health" + query, accept)
        assert (response.mimetype, response.data) == (HTML, b"<p>pass</p>")
        assert "Content-Security-Policy" not in response.headers  # the body is yours


def test_bytes_are_sent_as_they_are(app: Flask, health: HealthCheck) -> None:
    health.add_format("application/cbor", lambda report, details: b"\xa0\xff")
    assert get(app, "/health?format=cbor").data == b"\xa0\xff"


def test_a_megabyte_body(app: Flask, health: HealthCheck) -> None:
    body = "x" * 1_000_000
    health.add_format("text/csv", lambda report, details: body)
    response = get(app, "/health?format=csv")
    assert response.data == body.encode()
    assert response.headers["Content-Length"] == "1000000"


def test_the_status_code_is_the_extensions(app: Flask) -> None:
    app.config["HEALTHCHECK_FAILURE_STATUS"] = 503
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    health.add_check(lambda: False, name="cache", critical=False)
    health.add_format("text/csv", to_csv)
    response = get(app, "/health?format=csv")
    assert (response.status_code, response.data) == (503, b"health,fail\r\n")
    response = get(app, "/health/cache?format=csv")
    assert (response.status_code, response.data) == (200, b"health,warn\r\n")


@pytest.mark.parametrize(
    ("show", "expected"),
    [(False, False), (True, True), (lambda request: "let-me" in request.args, None)],
)
def test_the_renderer_sees_details_as_the_view_decided(
    app: Flask, show: Any, expected: bool | None
) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = show
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process")
    seen: list[bool] = []

    def render(report: HealthReport, details: bool) -> str:
        seen.append(details)
        return to_csv(report, details)

    health.add_format("text/csv", render)
    get(app, "/health?format=csv")
    get(app, "/health?format=csv&let-me=1")
    if expected is None:  # the callable: per request
        assert seen == [False, True]
    else:
        assert seen == [expected, expected]


def test_a_refusal_is_a_failing_report_with_details(
    app: Flask, health: HealthCheck
) -> None:
    health.add_format("text/csv", to_csv)  # details are hidden for reports
    assert get(app, "/health?format=csv").data == b"health,pass\r\n"
    response = get(app, "/health?format=csv&exclude=nope")
    assert response.status_code == 400
    assert response.data == b"health,fail\r\nexclude,unknown check 'nope'\r\n"
    response = get(app, "/livez?format=csv", method="PUT")
    assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD")
    assert response.data.startswith(b"health,fail\r\nmethod,the method PUT")


def test_the_report_a_renderer_gets_is_redacted(app: Flask) -> None:
    """The renderer gets the report itself: its errors and observed values
    were redacted when the checks ran (config secrets included)."""
    app.config.update(
        HEALTHCHECK_SHOW_DETAILS=True,
        DATABASE_URL=f"postgresql://app:{SECRET}@db.internal/app",
        API_KEY=SECRET + "-key",
    )
    health = HealthCheck(app)

    @health.check
    def database(config: Any) -> bool:
        raise ConnectionError(f"could not connect to {config['DATABASE_URL']}")

    @health.check
    def api(config: Any) -> CheckResult:
        return CheckResult(
            status="fail",
            error=f"refused key {config['API_KEY']}; password={SECRET}",
            observed_value=f"token={SECRET}",
        )

    reports: list[HealthReport] = []

    def render(report: HealthReport, details: bool) -> str:
        reports.append(report)
        return repr(report)

    health.add_format("text/plain+debug", render, name="debug")
    response = get(app, "/health?format=debug")
    assert response.status_code == 500
    assert SECRET not in response.get_data(as_text=True)
    results = {result.name: result for result in reports[0].checks}
    assert set(results) == {"database", "api"}
    assert "ConnectionError: could not connect to" in str(results["database"].error)
    assert "refused key" in str(results["api"].error)
    for result in results.values():
        assert SECRET not in f"{result.error} {result.observed_value}"


# -- a renderer that fails ---------------------------------------------------------


class CustomBaseError(BaseException):
    """Neither an Exception nor one of Python's own."""


@pytest.mark.parametrize(
    "error",
    [
        ValueError(f"password={SECRET}"),
        SystemExit(3),
        KeyboardInterrupt(),
        CustomBaseError(),
    ],
)
@pytest.mark.parametrize(
    ("passing", "code", "envelope"), [(True, 200, SUCCESS), (False, 500, FAILURE)]
)
def test_a_raising_renderer_answers_the_envelope(
    app: Flask,
    caplog: pytest.LogCaptureFixture,
    error: BaseException,
    passing: bool,
    code: int,
    envelope: bytes,
) -> None:
    health = HealthCheck(app)
    health.add_check(lambda: passing, name="database")

    def render(report: HealthReport, details: bool) -> str:
        raise error

    health.add_format("text/csv", render)
    with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
        response = get(app, "/health?format=csv")
    assert (response.status_code, response.data) == (code, envelope)
    assert response.content_type == JSON
    assert response.headers["Cache-Control"] == "no-store"
    record = next(r for r in caplog.records if "renderer of text/csv" in r.getMessage())
    assert record.exc_text is not None and type(error).__name__ in record.exc_text
    assert SECRET not in caplog.text


def test_a_raising_renderer_of_a_refusal_answers_the_envelope(
    app: Flask, health: HealthCheck, caplog: pytest.LogCaptureFixture
) -> None:
    def render(report: HealthReport, details: bool) -> str:
        raise SystemExit(1)

    health.add_format("text/csv", render)
    with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
        response = get(app, "/health?format=csv", method="POST")
    assert (response.status_code, response.content_type) == (405, JSON)
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.json["input_errors"] == {  # type: ignore[index]
        "method": "the method POST is not allowed here; use GET or HEAD"
    }


@pytest.mark.parametrize("body", [None, {"status": "pass"}, 42, "\ud800"])
def test_a_renderer_returning_no_text_answers_the_envelope(
    app: Flask, health: HealthCheck, caplog: pytest.LogCaptureFixture, body: object
) -> None:
    health.add_format("text/csv", lambda report, details: body)  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.ERROR, logger="flask_healthcheck"):
        response = get(app, "/health?format=csv")
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert "renderer of text/csv" in caplog.text


# -- registration errors -----------------------------------------------------------


def raises(message: str) -> Any:
    return pytest.raises(ConfigurationError, match=message)


@pytest.mark.parametrize(
    "mimetype",
    ["csv", "text/*", "*/*", "text/csv; charset=utf-8", "", "text/", "a/b/c", 42],
)
def test_a_bad_mimetype(mimetype: Any) -> None:
    with raises(r"add_format\(mimetype=...\) must be a media type 'type/subtype'"):
        HealthCheck().add_format(mimetype, to_csv)


def test_a_render_that_is_not_callable() -> None:
    with raises(
        r"add_format\(render=...\) must be a function render\(report, details\)"
    ):
        HealthCheck().add_format("text/csv", "csv")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a b", "ü", "csv?", "x/y", 3])
def test_a_bad_name(name: Any) -> None:
    with raises(r"add_format\(name=...\) is the \?format= name: letters, digits"):
        HealthCheck().add_format("text/csv", to_csv, name=name)


def test_a_subtype_that_is_no_name_needs_one() -> None:
    health = HealthCheck()
    with raises(r"name=\.\.\.\) .* got 'x_csv' \(for 'text/x_csv'\)"):
        health.add_format("text/x_csv", to_csv)
    health.add_format("text/x_csv", to_csv, name="x-csv")


def test_a_media_type_or_name_added_twice() -> None:
    health = HealthCheck()
    health.add_format("text/csv", to_csv)
    with raises(
        r"add_format\('text/csv', name='other'\): a format with the media type"
    ):
        health.add_format("TEXT/CSV", to_csv, name="other")
    with raises(r"the media type 'text/csv' and the name 'csv' was added already"):
        health.add_format("application/csv", to_csv)


def test_a_built_in_name_for_another_media_type() -> None:
    with raises(r"the name 'json' is the built-in 'application/json''s; pass another"):
        HealthCheck().add_format("text/json", to_csv)
    HealthCheck().add_format("text/json", to_csv, name="text-json")


def test_a_clash_between_shared_and_one_apps_formats(app: Flask) -> None:
    health = HealthCheck(app)
    health.add_format("text/csv", to_csv, app=app)
    with raises("was added already"):
        health.add_format("text/csv", to_csv)
    other_app = another_app("other")
    other = HealthCheck(other_app)
    other.add_format("text/csv", to_csv)
    with raises("was added already"):
        other.add_format("text/csv", to_csv, app=other_app)


def test_built_in_formats_all_have_names() -> None:
    assert all(BUILT_IN.names[f.name] is f for f in BUILT_IN.formats.values())


# -- what a refusal echoes (hostile round) ------------------------------------------

#: A credential in a URL, as a client (or a crawler replaying a log) sends it.
CREDENTIALS = f"postgres://admin:{SECRET}@db.internal/app"


@pytest.mark.parametrize(
    "url",
    [
        f"/health/{CREDENTIALS}?",
        f"/health?exclude={CREDENTIALS}&",
        f"/health/history?limit={CREDENTIALS}&",
        f"/health?exclude=password%3D{SECRET}&",
        f"/health?format={CREDENTIALS}&",
    ],
)
@pytest.mark.parametrize(
    "format", ["json", "health%2Bjson", "html", "text", "rss", "atom", "csv"]
)
def test_a_refusal_echoes_the_request_redacted(
    app: Flask, health: HealthCheck, url: str, format: str
) -> None:
    """The request's own URL, echoed in every format's refusal, is redacted
    as every other text shown is: a response is logged, proxied and cached
    by more hands than the client's."""
    health.add_format("text/csv", to_csv)
    response = get(app, f"{url}format={format}")
    assert response.status_code in (400, 404, 406)
    text = response.get_data(as_text=True)
    assert SECRET not in text
    assert "***" in text


@pytest.mark.parametrize("url", ["/health", "/health/database", "/health/"])
@pytest.mark.parametrize(
    ("query", "mimetype"), [("", JSON), ("?format=text", "text/plain")]
)
def test_a_bad_host_is_refused_in_the_extensions_format(
    app: Flask, health: HealthCheck, url: str, query: str, mimetype: str
) -> None:
    """Werkzeug refuses a Host it can't read (a label over 63 characters)
    before routing; under the health URLs that is the extension's answer,
    never Werkzeug's HTML page without ``no-store``."""
    response = app.test_client().get(url + query, headers={"Host": "a" * 64 + ".com"})
    assert response.status_code == 400
    assert response.mimetype == mimetype
    assert response.headers["Cache-Control"] == "no-store"
    assert "a" * 64 not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "format", ["json", "health%2Bjson", "html", "text", "rss", "atom", "csv"]
)
def test_an_observed_unit_is_redacted_and_bounded(app: Flask, format: str) -> None:
    """``observed_unit`` is text a check wrote, as its error is: redacted
    and cut in every format (health+json and the page showed a megabyte of
    it as it was), and what isn't text is shown as its text."""
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    long = "x" * 100 + " "

    @health.check
    def disk() -> CheckResult:
        unit = f"% of postgres://u:{SECRET}@db/x " + long * 10_000
        return CheckResult(status="warn", observed_value=91, observed_unit=unit)

    @health.check
    def queue() -> CheckResult:
        return CheckResult(observed_value=3, observed_unit=b"jobs")  # type: ignore[arg-type]

    def render(report: HealthReport, details: bool) -> str:
        return repr([(r.observed_value, r.observed_unit) for r in report.checks])

    health.add_format("text/csv", render)
    response = get(app, f"/health?format={format}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert SECRET not in text
    assert len(text) < 100_000
    if format == "health%2Bjson":
        checks = json.loads(text)["checks"]
        assert checks["disk"][0]["observedUnit"].startswith("% of postgres://u:***@")
        assert checks["queue"][0]["observedUnit"] == "b'jobs'"
