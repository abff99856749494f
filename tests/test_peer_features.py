"""The peers' own tests of the features issue 18 adds, ported to our API.

Each test ports the intent of one test of django-health-check,
py-healthcheck or clearskies (its docstring names the peer, file and test),
written anew against flask-healthcheck's documented behaviour: no peer code
is copied. Where our documented behaviour deliberately differs from the
peer's, the test asserts ours and its docstring says why. The peers' tests
of features that were already ours are ported elsewhere (issue 18: 119 of
119 pass); these are the ones a user of a peer would have missed.

Every body is read by a real consumer: OpenMetrics by prometheus_client's
parser, feeds by feedparser and a strict XML parser, the OpenAPI document
by openapi-spec-validator.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from flask_healthcheck import ConfigurationError, HealthCheck

from .helpers import FAILURE, SUCCESS

ATOM_NS = {"atom": "http://www.w3.org/2005/Atom"}
OPENMETRICS = "application/openmetrics-text"


def passing() -> bool:
    """A check that passes (django's ``SuccessBackend``)."""
    return True


def failing() -> None:
    """A check that fails with a message (django's ``FailingBackend``)."""
    raise ConnectionError("Check failed")


@pytest.fixture
def make_client(app: Flask) -> Iterator[Callable[..., FlaskClient]]:
    """A client of ``app`` with the checks given by name, details shown
    (the peers show every check's result to everyone)."""

    def make(details: bool = True, **checks: Callable[..., Any]) -> FlaskClient:
        app.config["HEALTHCHECK_SHOW_DETAILS"] = details
        health = HealthCheck(app)
        for name, func in checks.items():
            health.add_check(func, name=name)
        return app.test_client()

    yield make


def samples(text: str) -> dict[str, list[Sample]]:
    """The samples of an OpenMetrics body by metric family, as
    prometheus_client's parser reads them (it raises on anything invalid)."""
    return {
        family.name: list(family.samples)
        for family in text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    }


ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"


def feed(data: bytes, version: str) -> Any:
    """The feed as a reader sees it: well-formed XML, a valid feed."""
    ElementTree.fromstring(data)
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == version
    return parsed


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """``node`` with a top-level ``$ref`` followed (repeatedly)."""
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_properties(document: Mapping[str, Any], schema: Any) -> set[str]:
    """Every property name a JSON Schema declares, through ``$ref`` and
    ``allOf``/``anyOf``/``oneOf``."""
    schema = resolve(document, schema)
    names: set[str] = set()
    if not isinstance(schema, Mapping):
        return names
    names.update(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            names |= schema_properties(document, part)
    return names


# -- django-health-check: ?format= and Accept ------------------------------------


def test_format_parameter_overrides_accept(
    make_client: Callable[..., FlaskClient],
) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__format_parameter_override (older: TestMainView::
    test_format_override): ``?format=json`` wins over ``Accept: text/html``."""
    client = make_client(details=False, success=passing)
    response = client.get("/health?format=json", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.data == SUCCESS


def json_by_format_parameter(client: FlaskClient, code: int) -> Any:
    """The JSON body ``client`` got for ``?format=json``, answered with
    ``code``."""
    response = client.get("/health", query_string={"format": "json"})
    assert response.status_code == code
    assert response.content_type == "application/json"
    return response.get_json()


def test_json_format_parameter(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__json_format_parameter (older: TestMainView::
    test_success_param_json). Django's JSON is ``{check: status}``; ours is
    the clearskies envelope, with each check under ``data.checks`` (details)."""
    body = json_by_format_parameter(make_client(success=passing), 200)
    assert body["status"] == "success"
    assert body["data"]["checks"]["success"]["status"] == "pass"


def test_error_json_format_parameter(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__error_json_format_parameter (older: TestMainView::
    test_error_param_json): a failing check's error in the JSON, 500."""
    body = json_by_format_parameter(make_client(failing=failing), 500)
    assert body["status"] == "failure"
    assert "Check failed" in body["data"]["checks"]["failing"]["error"]


def test_xhtml_gets_the_status_page(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__xhtml_fallback (older: TestMainView::test_success_accept_xhtml)."""
    client = make_client(success=passing)
    response = client.get("/health", headers={"Accept": "application/xhtml+xml"})
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"


def test_unsupported_accept(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__unsupported_accept (older: TestMainView::
    test_success_unsupported_accept). Deliberately different: django answers
    406 in text/plain; we keep the clearskies envelope for an ``Accept``
    that matches nothing (compatibility: clients of clearskies sent
    anything), and only a ``?format=`` naming no format is a 406."""
    client = make_client(details=False, success=passing)
    response = client.get("/health", headers={"Accept": "application/octet-stream"})
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert response.content_type == "application/json"
    refused = client.get("/health?format=octet-stream")
    assert refused.status_code == 406
    assert refused.content_type == "application/json"
    assert "format" in refused.get_json()["input_errors"]


def test_accept_order_prefers_html(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__html_preferred (older: TestMainView::test_success_accept_order):
    a browser's ``Accept`` gets the status page."""
    client = make_client(success=passing)
    response = client.get(
        "/health",
        headers={
            "Accept": "text/html, application/xhtml+xml, application/json; q=0.9,"
            " */*; q=0.1"
        },
    )
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "accept",
    [
        # django-health-check tests/test_views.py::TestHealthCheckView::
        # test_get__unsupported_with_fallback (older: TestMainView::
        # test_success_unsupported_and_supported_accept).
        "application/octet-stream, application/json; q=0.9",
        # django-health-check tests/test_views.py::TestHealthCheckView::
        # test_get__json_preferred_reverse_order (older: TestMainView::
        # test_success_accept_order__reverse).
        "text/html; q=0.1, application/xhtml+xml; q=0.1, application/json",
    ],
    ids=["unsupported_with_a_supported_fallback", "accept_order_reversed"],
)
def test_json_preferred_by_the_accept_header_gets_json(
    make_client: Callable[..., FlaskClient], accept: str
) -> None:
    """An ``Accept`` that ranks JSON first among what we serve gets the
    envelope."""
    client = make_client(details=False, success=passing)
    response = client.get("/health", headers={"Accept": accept})
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert response.content_type == "application/json"


def test_vary_accept_in_every_format(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_vary_header_with_different_accept_headers, over every format we
    have (and ``Cache-Control: no-store``, which probes need too)."""
    client = make_client(success=passing)
    for accept in (
        "text/html",
        "application/json",
        "application/health+json",
        "application/atom+xml",
        "application/rss+xml",
        OPENMETRICS,
    ):
        response = client.get("/health", headers={"Accept": accept})
        assert response.status_code == 200, accept
        assert response.mimetype == accept
        assert "Accept" in response.headers.get("Vary", ""), accept
        assert response.headers["Cache-Control"] == "no-store", accept


# -- django-health-check: RSS and Atom ----------------------------------------------


@dataclass(frozen=True)
class FeedRequest:
    """A request for a feed, by ``?format=`` or ``Accept``, and what answers."""

    kwargs: dict[str, Any]
    mimetype: str
    version: str


@pytest.fixture(
    params=[
        FeedRequest({"query_string": {"format": "atom"}}, ATOM_TYPE, "atom10"),
        FeedRequest({"query_string": {"format": "rss"}}, RSS_TYPE, "rss20"),
        FeedRequest({"headers": {"Accept": ATOM_TYPE}}, ATOM_TYPE, "atom10"),
        FeedRequest({"headers": {"Accept": RSS_TYPE}}, RSS_TYPE, "rss20"),
    ],
    ids=["atom-param", "rss-param", "atom-accept", "rss-accept"],
)
def feed_request(request: pytest.FixtureRequest) -> FeedRequest:
    param: FeedRequest = request.param
    return param


def feed_answer(client: FlaskClient, asked: FeedRequest, code: int) -> Any:
    """The feed ``client`` got for ``asked``, answered with ``code``."""
    response = client.get("/health", **asked.kwargs)
    assert response.status_code == code
    assert response.mimetype == asked.mimetype
    return feed(response.data, asked.version)


def test_feed_of_a_passing_app(
    make_client: Callable[..., FlaskClient], feed_request: FeedRequest
) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__atom_format_parameter, test_get__rss_format_parameter,
    test_get__atom_accept_header and test_get__rss_accept_header."""
    parsed = feed_answer(make_client(success=passing), feed_request, 200)
    assert parsed.entries


def test_feed_of_a_failing_app(
    make_client: Callable[..., FlaskClient], feed_request: FeedRequest
) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__atom_format_parameter_error, test_get__rss_format_parameter_error,
    test_get__atom_accept_header_error and test_get__rss_accept_header_error.
    Deliberately different: django answers a failing app's feed with 200; we
    answer it with the failure status like every format (a probe that asks
    for a feed must still see the failure), and the feed tells the failure:
    an entry in the ``fail`` category with the check's error (details)."""
    parsed = feed_answer(make_client(failing=failing), feed_request, 500)
    terms = {tag.term for entry in parsed.entries for tag in entry.get("tags", [])}
    assert "fail" in terms
    assert any("Check failed" in entry.get("summary", "") for entry in parsed.entries)


def test_atom_entry_structure(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_feeds.py::TestHealthCheckFeedIntegration::
    test_feed_entry_structure (and test_feed_contains_entries,
    test_feed_valid_xml): entries with title, link and updated."""
    client = make_client(success=passing)
    response = client.get("/health?format=atom")
    root = ElementTree.fromstring(response.data)
    entries = root.findall("atom:entry", ATOM_NS)
    assert entries
    for entry in entries:
        assert entry.find("atom:title", ATOM_NS) is not None
        assert entry.find("atom:link", ATOM_NS) is not None
        assert entry.find("atom:updated", ATOM_NS) is not None


def test_rss_item_structure(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_feeds.py::TestHealthCheckFeedIntegration::
    test_rss_feed_item_structure (and test_rss_feed_contains_items,
    test_rss_feed_valid_xml): items with title, link, description, pubDate."""
    client = make_client(success=passing)
    response = client.get("/health?format=rss")
    root = ElementTree.fromstring(response.data)
    items = root.findall(".//item")
    assert items
    for item in items:
        for child in ("title", "link", "description", "pubDate"):
            assert item.find(child) is not None, child


def test_feed_categories_of_a_failure(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_feeds.py::TestHealthCheckFeed::
    test_item_categories_error and test_item_description_error. Django tags
    a failure ``error`` and ``unhealthy``; we tag each entry with its status,
    ``fail`` (``pass``, ``warn``), the terms of every other format, and the
    description carries the error."""
    client = make_client(failing=failing)
    parsed = feed(client.get("/health?format=atom").data, "atom10")
    failed = [e for e in parsed.entries if e.title.startswith("failing")]
    assert failed
    assert [tag.term for tag in failed[0].tags] == ["fail"]
    assert "Check failed" in failed[0].summary


# -- django-health-check: OpenMetrics on the health URL ------------------------------


def test_openmetrics_format_parameter(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_format_parameter. Our gauges are named as
    contrib.prometheus's (``health_status``, ``health_check_status``,
    ``health_check_duration_seconds``), not ``django_health_check_*``."""
    client = make_client(success=passing)
    response = client.get("/health?format=openmetrics")
    assert response.status_code == 200
    assert response.mimetype == OPENMETRICS
    assert response.text.endswith("# EOF\n")
    families = samples(response.text)
    assert {
        "health_status",
        "health_check_status",
        "health_check_duration_seconds",
    } <= (families.keys())


def test_openmetrics_accept_header(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_accept_header_openmetrics, with the ``Accept``
    Prometheus itself sends."""
    client = make_client(success=passing)
    response = client.get(
        "/health",
        headers={
            "Accept": "application/openmetrics-text;version=1.0.0,"
            "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        },
    )
    assert response.status_code == 200
    assert response.mimetype == OPENMETRICS
    assert "health_check_status" in samples(response.text)


def test_openmetrics_healthy_status(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_healthy_status: 1 per check and overall."""
    client = make_client(success=passing)
    families = samples(client.get("/health?format=openmetrics").text)
    assert [(s.labels, s.value) for s in families["health_check_status"]] == [
        ({"check": "success"}, 1.0)
    ]
    assert [s.value for s in families["health_status"]] == [1.0]


def test_openmetrics_unhealthy_status(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_unhealthy_status: 0 per check and overall (and,
    as in every format, the failure status)."""
    client = make_client(failing=failing)
    response = client.get("/health?format=openmetrics")
    assert response.status_code == 500
    families = samples(response.text)
    assert [(s.labels, s.value) for s in families["health_check_status"]] == [
        ({"check": "failing"}, 0.0)
    ]
    assert [s.value for s in families["health_status"]] == [0.0]


def test_openmetrics_response_time(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_response_time."""
    client = make_client(success=passing)
    families = samples(client.get("/health?format=openmetrics").text)
    [sample] = families["health_check_duration_seconds"]
    assert sample.labels == {"check": "success"}
    assert sample.value >= 0


def test_openmetrics_multiple_checks(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_multiple_checks: a series per check, whatever
    its status."""
    client = make_client(success=passing, failing=failing)
    response = client.get("/health?format=openmetrics")
    assert response.status_code == 500
    status = {
        s.labels["check"]: s.value
        for s in samples(response.text)["health_check_status"]
    }
    assert status == {"success": 1.0, "failing": 0.0}


def test_openmetrics_label_sanitization(
    make_client: Callable[..., FlaskClient],
) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_label_sanitization: a name with ``-``, ``.`` and
    a space is the label value as it is."""
    name = "Custom-Check.Backend Test"
    client = make_client(**{name: passing})
    response = client.get("/health?format=openmetrics")
    assert f'check="{name}"' in response.text
    labels = [s.labels for s in samples(response.text)["health_check_status"]]
    assert labels == [{"check": name}]


def test_openmetrics_label_escaping(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_label_escaping: quotes, backslashes and newlines
    escaped as OpenMetrics requires, read back as the name."""
    name = 'Test "quoted" value\\with\\backslashes\nand newlines'
    client = make_client(**{name: passing})
    response = client.get("/health?format=openmetrics")
    assert 'Test \\"quoted\\" value\\\\with\\\\backslashes\\nand newlines' in (
        response.text
    )
    labels = [s.labels for s in samples(response.text)["health_check_status"]]
    assert labels == [{"check": name}]


def test_openmetrics_metadata(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__openmetrics_metadata: HELP and TYPE gauge for each family."""
    client = make_client(success=passing)
    text = client.get("/health?format=openmetrics").text
    for family in (
        "health_status",
        "health_check_status",
        "health_check_duration_seconds",
    ):
        assert f"# HELP {family} " in text
        assert f"# TYPE {family} gauge\n" in text
    families = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    assert {f.type for f in families} == {"gauge"}


# -- django-health-check: text/plain ------------------------------------------------


def test_text_format_parameter(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__text_format_parameter. Django writes ``name: OK``; ours is
    the status first, then ``name: pass, <duration>`` per check."""
    client = make_client(success=passing)
    response = client.get("/health?format=text")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    first, *checks = response.text.splitlines()
    assert first == "pass"
    assert checks[0].startswith("success: pass")


def test_text_accept_header(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__text_accept_header."""
    client = make_client(success=passing)
    response = client.get("/health", headers={"Accept": "text/plain"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "success: pass" in response.text


def test_text_healthy_status(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__text_healthy_status."""
    client = make_client(success=passing)
    response = client.get("/health?format=text")
    assert response.status_code == 200
    assert response.text.splitlines()[0] == "pass"
    assert "success: pass" in response.text


def test_text_unhealthy_status(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__text_unhealthy_status: the name and the error, 500."""
    client = make_client(failing=failing)
    response = client.get("/health?format=text")
    assert response.status_code == 500
    assert response.text.splitlines()[0] == "fail"
    [line] = [line for line in response.text.splitlines() if line.startswith("failing")]
    assert "Check failed" in line


def test_text_multiple_checks(make_client: Callable[..., FlaskClient]) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_get__text_multiple_checks. Django has a line per check; ours has
    the overall status first, so three lines."""
    client = make_client(success=passing, failing=failing)
    response = client.get("/health?format=text")
    assert response.status_code == 500
    lines = response.text.strip().splitlines()
    assert len(lines) == 3
    assert lines[0] == "fail"
    assert lines[1].startswith("success: pass")
    assert lines[2].startswith("failing: fail") and "Check failed" in lines[2]


# -- django-health-check: running checks without threads ----------------------------


def test_threading_disabled(app: Flask) -> None:
    """django-health-check tests/test_views.py::TestHealthCheckView::
    test_threading_disabled (``use_threading=False``, the setting
    ``DISABLE_THREADING``): two checks pass without threads, 200."""
    app.config["HEALTHCHECK_THREADS"] = False
    health = HealthCheck(app)
    health.add_check(passing, name="first")
    health.add_check(passing, name="second")
    response = app.test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)


def test_run_check_threading_disabled(app: Flask) -> None:
    """django-health-check tests/test_mixins.py::TestCheckMixin::
    test_run_check_threading_disabled: with threading off no thread pool is
    used. Without mocking the pool (ours is the thing being checked), each
    check must see the request's own thread, and a failure still counts."""
    app.config.update(HEALTHCHECK_THREADS=False, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)
    seen: list[int] = []

    def on_which_thread() -> bool:
        seen.append(threading.get_ident())
        return True

    health.add_check(on_which_thread, name="ok")
    health.add_check(failing, name="bad")
    response = app.test_client().get("/health")
    assert response.status_code == 500
    assert response.get_json()["data"]["checks"]["bad"]["status"] == "fail"
    assert seen == [threading.get_ident()]


# -- py-healthcheck -----------------------------------------------------------------


def test_debug_line_for_a_passing_check(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_success_check: a DEBUG line ``Health check "check_that_works"
    passed``. Ours is on the ``flask_healthcheck`` logger, names the check
    (and the app and duration), and is the only line for it."""
    health = HealthCheck(app)

    @health.check
    def check_that_works() -> tuple[bool, str]:
        return True, "it works"

    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        response = app.test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)
    lines = [
        r
        for r in caplog.records
        if r.name == "flask_healthcheck" and "check_that_works" in r.getMessage()
    ]
    assert [(r.levelno, "passed" in r.getMessage()) for r in lines] == [
        (logging.DEBUG, True)
    ]


def test_custom_section_function_success(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_custom_section_function_success_check: the section's value under
    its name at the top of the JSON document (ours: health+json, with
    details; the clearskies envelope stays byte for byte)."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(passing, name="check_that_works")
    health.add_section("custom_section", lambda: "My custom section")
    client = app.test_client()
    response = client.get("/health", headers={"Accept": "application/health+json"})
    assert response.status_code == 200
    assert response.get_json()["custom_section"] == "My custom section"
    envelope = client.get("/health")
    assert "custom_section" not in envelope.text


def test_custom_section_value_success(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_custom_section_value_success_check. Deliberately different:
    py-healthcheck also takes a plain value; DESIGN's ``add_section(name,
    func)`` takes a function (a value is one ``lambda`` away, and a value
    fixed at import is rarely what a health page should show)."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(passing, name="check_that_works")
    value = "My custom section"
    health.add_section("custom_section", lambda: value)
    response = app.test_client().get(
        "/health", headers={"Accept": "application/health+json"}
    )
    assert response.status_code == 200
    assert response.get_json()["custom_section"] == value


def test_custom_section_function_failing(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_custom_section_function_failing_check: sections show with a
    failing report too, 500."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(failing, name="check_throws_exception")
    health.add_section("custom_section", lambda: "My custom section")
    response = app.test_client().get(
        "/health", headers={"Accept": "application/health+json"}
    )
    assert response.status_code == 500
    body = response.get_json()
    assert body["status"] == "fail"
    assert body["custom_section"] == "My custom section"


def test_custom_section_value_failing(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_custom_section_value_failing_check (a value as a function, see
    test_custom_section_value_success), read in text/plain this time."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(failing, name="check_throws_exception")
    health.add_section("custom_section", lambda: "My custom section")
    response = app.test_client().get("/health?format=text")
    assert response.status_code == 500
    assert "custom_section: My custom section" in response.text.splitlines()


def test_custom_section_prevent_duplication(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::BasicHealthCheckTest::
    test_custom_section_prevent_duplication: a taken name raises (ours:
    ``ConfigurationError``, at registration)."""
    health = HealthCheck(app)
    health.add_section("custom_section", lambda: "My custom section")
    with pytest.raises(ConfigurationError, match="custom_section"):
        health.add_section("custom_section", lambda: "My custom section")


def test_section_over_http(app: Flask) -> None:
    """py-healthcheck tests/web/test_flask.py::BasicEnvironmentDumpTest::
    test_basic_check: a section function's value in a Flask app's answer.
    Its second section, ``app.config`` itself, is not ported: a section
    here is a function, and a config is full of secrets; what we'd show of
    it is redacted (values under secret-looking keys masked)."""
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True, SECRET_KEY="hunter2-hunter2")
    health = HealthCheck(app)
    health.add_section("test_func", lambda: "OK")
    health.add_section("config", lambda config: {"SECRET_KEY": config["SECRET_KEY"]})
    response = app.test_client().get(
        "/health", headers={"Accept": "application/health+json"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["test_func"] == "OK"
    assert "hunter2" not in response.text


def test_json_success_handler(app: Flask) -> None:
    """py-healthcheck tests/unit/healthcheck_test.py::TimeoutHealthCheckTest::
    test_json_success_handler: a body renderer of one's own
    (``success_handler``/``failed_handler``), with ``status``, a timestamp
    and the results. Ours is ``health.add_format(mimetype, render)``:
    registering ``application/json`` replaces the envelope for both
    outcomes, while status codes and headers stay the extension's."""
    health = HealthCheck(app)
    health.add_check(passing, name="check_that_works")
    outcome = {"value": True}
    health.add_check(lambda: outcome["value"], name="switch")

    def json_handler(report: Any, details: bool) -> str:
        return json.dumps(
            {
                "status": "success" if report.healthy else "failure",
                "timestamp": 1700000000.0,
                "results": [
                    {"checker": r.name, "passed": r.status != "fail"}
                    for r in report.checks
                ],
            }
        )

    health.add_format("application/json", json_handler)
    client = app.test_client()
    body = client.get("/health").get_json()
    assert {"status", "timestamp", "results"} <= body.keys()
    assert body["status"] == "success"
    assert [r["checker"] for r in body["results"]] == ["check_that_works", "switch"]
    outcome["value"] = False
    failed = client.get("/health")
    assert failed.status_code == 500
    assert failed.headers["Cache-Control"] == "no-store"
    assert failed.get_json()["status"] == "failure"


# -- clearskies: a machine-readable description of the endpoint ---------------------


def test_documentation(app: Flask) -> None:
    """clearskies src/clearskies/handlers/health_check_test.py::
    HealthCheckTest::test_documentation: the endpoint documented with a 200
    response whose body has the envelope's keys (status, data, pagination,
    error, input_errors). Ours also documents the failure status, the
    refusals and ``?exclude=``/``?format=`` (clearskies: no parameters)."""
    health = HealthCheck(app)
    health.add_check(passing, name="success")
    client = app.test_client()
    response = client.get("/health/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    operation = document["paths"]["/health"]["get"]
    assert {"200", "500"} <= set(operation["responses"])
    success = resolve(document, operation["responses"]["200"])
    schema = success["content"]["application/json"]["schema"]
    assert schema_properties(document, schema) == {
        "status",
        "data",
        "pagination",
        "error",
        "input_errors",
    }
    # Documented, and true: the real answer has exactly those keys.
    assert set(json.loads(client.get("/health").data)) == {
        "status",
        "data",
        "pagination",
        "error",
        "input_errors",
    }


def test_full_json_conversion(app: Flask) -> None:
    """clearskies src/clearskies/autodoc/formats/oai3_json/oai3_json_test.py::
    SimpleRoutingTest::test_full_json_conversion: the whole document, with
    ``info`` (title, version) and ``servers``. clearskies compares it with
    a stored file; we validate it with openapi-spec-validator instead (a
    stored copy would only test itself)."""
    app.config.update(HEALTHCHECK_SERVICE_ID="orders", HEALTHCHECK_VERSION="1.0")
    health = HealthCheck(app)
    health.add_check(passing, name="success")
    document = app.test_client().get("/health/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == "1.0"
    assert "orders" in document["info"]["title"]
    assert document["servers"]


def test_envelope_unchanged_by_every_new_format(
    make_client: Callable[..., FlaskClient],
) -> None:
    """Not a peer's test: the guard that porting them cost nothing. With
    every format on offer, clearskies' clients still get clearskies' bytes."""
    healthy = {"value": True}
    client = make_client(details=False, switch=lambda: healthy["value"])
    assert client.get("/health").data == SUCCESS
    healthy["value"] = False
    assert client.get("/health").data == FAILURE
