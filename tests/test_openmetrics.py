"""``application/openmetrics-text`` on the health URLs.

Every body is read by Prometheus's own consumers: prometheus_client's
OpenMetrics parser and ``promtool check metrics``, and once by a real
Prometheus server scraping the health URL. promtool 2.42 (Debian's) reads
only the Prometheus text format 0.0.4: it takes OpenMetrics' ``# UNIT``
and ``# EOF`` lines as comments and lints the rest (names, help, types,
label escaping), which for gauges is the same syntax.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.contrib.prometheus import init_prometheus
from flask_healthcheck.gauges import (
    ALL_GAUGES,
    CHECK_GAUGES,
    STATUS_VALUES,
    GaugeDefinition,
)
from flask_healthcheck.openmetrics import CONTENT_TYPE, exposition

from .helpers import REFUSALS
from .prometheus import StartPrometheus, require_binary
from .servers import LOOPBACK

ACCEPT = {"Accept": "application/openmetrics-text"}
#: What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
DOCS = Path(__file__).parent.parent / "docs" / "endpoints.md"


def families(text: str) -> dict[str, Metric]:
    """The body as prometheus_client's OpenMetrics parser reads it; it
    raises on anything that is not OpenMetrics 1.0 (a missing ``# EOF``,
    bad escaping, a repeated family)."""
    found: dict[str, Metric] = {}
    for metric in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]
        assert metric.name not in found, f"family {metric.name} repeated"
        found[metric.name] = metric
    return found


def promtool(text: str) -> None:
    """``promtool check metrics`` on the body: parse and lint, no warning."""
    result = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def validated(response: TestResponse) -> dict[str, Metric]:
    """The families of an OpenMetrics answer, checked by both consumers,
    with no series repeated."""
    assert response.headers["Content-Type"] == CONTENT_TYPE
    assert response.headers["Cache-Control"] == "no-store"
    assert "Accept" in response.headers["Vary"]
    text = response.get_data(as_text=True)
    assert text.endswith("\n# EOF\n") or text == "# EOF\n"
    promtool(text)
    found = families(text)
    for metric in found.values():
        series = [(s.name, tuple(sorted(s.labels.items()))) for s in metric.samples]
        assert len(series) == len(set(series)), f"a series of {metric.name} repeats"
    return found


def by_check(metric: Metric) -> dict[str, float]:
    return {sample.labels["check"]: sample.value for sample in metric.samples}


def overall(found: dict[str, Metric]) -> float:
    (sample,) = found["health_status"].samples
    assert sample.labels == {}
    return sample.value


def with_details(app: Flask, **config: object) -> HealthCheck:
    """The extension on ``app``, details shown, ``HEALTHCHECK_<key>`` set."""
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    app.config.update({f"HEALTHCHECK_{key}": value for key, value in config.items()})
    return HealthCheck(app)


@pytest.fixture
def detailed(app: Flask) -> HealthCheck:
    return with_details(app)


def test_without_details_only_the_overall_status_shows(
    app: Flask, health: HealthCheck
) -> None:
    health.add_check(lambda: True, name="database")
    health.add_check(lambda: False, name="secret_service", critical=False)
    response = app.test_client().get("/health", headers=ACCEPT)
    assert response.status_code == 200
    found = validated(response)
    assert list(found) == ["health_status"]
    assert found["health_status"].type == "gauge"
    assert overall(found) == 0.5
    body = response.get_data(as_text=True)
    assert "database" not in body and "secret_service" not in body


def test_with_details_every_check_has_its_gauges(app: Flask) -> None:
    detailed = with_details(app, WARN_STATUS=299)
    detailed.add_check(lambda: True, name="database")
    detailed.add_check(lambda: CheckResult(status="warn"), name="disk")
    detailed.add_check(lambda: 1 / 0, name="search", critical=False)
    before = time.time()
    response = app.test_client().get("/health", headers=ACCEPT)
    assert response.status_code == 299  # warn
    found = validated(response)
    assert list(found) == [gauge.name for gauge in ALL_GAUGES]
    assert overall(found) == STATUS_VALUES["warn"]
    statuses = by_check(found["health_check_status"])
    assert statuses == {"database": 1.0, "disk": 0.5, "search": 0.0}
    durations = by_check(found["health_check_duration_seconds"])
    assert list(durations) == ["database", "disk", "search"]
    assert all(0 <= seconds < 10 for seconds in durations.values())
    ended = by_check(found["health_check_last_run_timestamp_seconds"])
    assert all(before <= at <= time.time() for at in ended.values())
    for gauge in ALL_GAUGES:
        metric = found[gauge.name]
        assert (metric.type, metric.documentation, metric.unit) == (
            gauge.type,
            gauge.help,
            gauge.unit,
        )
        assert all(set(s.labels) == set(gauge.labels) for s in metric.samples)


def statuses_at(app: Flask, path: str, code: int) -> tuple[float, dict[str, float]]:
    """The overall status and each check's, as OpenMetrics at ``path``
    answered with ``code``."""
    response = app.test_client().get(path, headers=ACCEPT)
    assert response.status_code == code
    found = validated(response)
    return overall(found), by_check(found["health_check_status"])


def test_a_failing_report_answers_the_failure_status(app: Flask) -> None:
    detailed = with_details(app, FAILURE_STATUS=503)
    detailed.add_check(lambda: False, name="database")
    statuses = statuses_at(app, "/health", 503)
    assert statuses == (0.0, {"database": 0.0})


def test_one_check_url_shows_that_check_only(app: Flask, detailed: HealthCheck) -> None:
    detailed.add_check(lambda: True, name="database")
    detailed.add_check(lambda: False, name="cache")
    statuses = statuses_at(app, "/health/database", 200)
    assert statuses == (1.0, {"database": 1.0})


def test_head_answers_the_headers_of_get(app: Flask, detailed: HealthCheck) -> None:
    detailed.add_check(lambda: False, name="database")
    client = app.test_client()
    get = client.get("/health", headers=ACCEPT)
    head = client.head("/health", headers=ACCEPT)
    assert head.status_code == get.status_code == 500
    assert head.data == b""
    for header in ("Content-Type", "Cache-Control", "Vary"):
        assert head.headers[header] == get.headers[header]


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [*REFUSALS, ("POST", "/health", 405)],
)
def test_a_refusal_is_an_empty_exposition(
    app: Flask, detailed: HealthCheck, method: str, path: str, code: int
) -> None:
    """No check ran: no gauge has a value (``health_status 0`` would call
    the app unhealthy for a typo in a URL). The status says what went
    wrong; the body stays valid for a parser that reads it anyway."""
    detailed.add_check(lambda: True, name="database")
    response = app.test_client().open(path, method=method, headers=ACCEPT)
    assert response.status_code == code
    assert validated(response) == {}
    assert response.get_data(as_text=True) == "# EOF\n"


HOSTILE_NAMES = [
    'quoted "name"',
    "back\\slash\\",
    "new\nline",
    "carriage\rreturn\ttab\x00nul\x7f",
    "unicode é ☃ 𝄞 \u2028",
    "x" * 10_000,
    "password=hunter2 token=abc123",
    'db"} 0\n# EOF\nhealth_status 1\n# x{check="',
]


def test_hostile_check_names_stay_one_label_each(
    app: Flask, detailed: HealthCheck
) -> None:
    """Each name is one label value, read back as it was: nothing in a
    name can end the label, add a series or end the exposition. Names are
    shown as every other format shows them (the envelope's keys, the
    contrib.prometheus label): they are the app's identifiers, not
    redacted (a redacted label would no longer match the other formats,
    ``<url>/<name>`` or contrib.prometheus's series)."""
    for name in HOSTILE_NAMES:
        detailed.add_check(lambda: False, name=name, critical=False)
    response = app.test_client().get("/health", headers=ACCEPT)
    found = validated(response)
    assert overall(found) == 0.5
    for gauge in CHECK_GAUGES:
        assert list(by_check(found[gauge.name])) == HOSTILE_NAMES
    envelope = app.test_client().get("/health").get_json()
    assert list(envelope["data"]["checks"]) == HOSTILE_NAMES


def test_a_name_utf8_cannot_encode_is_replaced() -> None:
    """A lone surrogate is a valid Python string, not valid UTF-8."""
    result = CheckResult(name="bad\ud800name", status="pass", started_at=1.0)
    text = exposition(HealthReport.from_results([result]), details=True)
    text.encode()
    assert by_check(families(text)["health_check_status"]) == {"bad\ufffdname": 1.0}


def test_the_same_gauges_as_contrib_prometheus(
    app: Flask, detailed: HealthCheck
) -> None:
    """One definition: contrib.prometheus's registry exposes the same
    families (name, type, help, unit, labels) with the same values after
    the same run; ``health_status`` is the health URLs' own."""
    registry = CollectorRegistry()
    init_prometheus(app, registry)
    detailed.add_check(lambda: True, name="database")
    detailed.add_check(lambda: CheckResult(status="warn"), name='we"ird\nname')
    ours = validated(app.test_client().get("/health", headers=ACCEPT))
    exposed = generate_latest(registry)  # type: ignore[no-untyped-call]
    theirs = families(exposed.decode())
    assert set(ours) - set(theirs) == {"health_status"}
    for name, metric in theirs.items():
        assert ours[name] == metric  # name, type, help, unit and samples


def test_the_docs_show_what_the_code_renders() -> None:
    """docs/endpoints.md: its gauges table is the definitions, and
    its sample body is what the renderer writes for its report."""
    text = DOCS.read_text()
    for gauge in ALL_GAUGES:
        labels = "{" + ",".join(gauge.labels) + "}" if gauge.labels else ""
        row = f"| `{gauge.name}{labels}` | {gauge.unit or '-'} | {gauge.help} |"
        assert row in text
    (sample,) = re.findall(r"```text\n(.*?)```", text, re.S)
    assert sample == exposition(DOCS_REPORT, details=True)


def test_a_gauge_with_a_unit_ends_with_it() -> None:
    """OpenMetrics requires the suffix; a definition without it is refused."""
    with pytest.raises(ValueError, match="must end with its unit"):
        GaugeDefinition("health_check_duration", "x", unit="seconds")


def test_a_result_without_a_start_time_ended_with_its_report() -> None:
    """A ``CheckResult`` made by hand has no ``started_at``: its last run
    is taken from the report, not from 1970."""
    report = HealthReport.from_results(
        [CheckResult("made_by_hand", duration=0.5)], started_at=1_700_000_000.0
    )
    text = exposition(report, details=True)
    ended = by_check(families(text)["health_check_last_run_timestamp_seconds"])
    assert ended == {"made_by_hand": 1_700_000_000.5}


#: The report of the sample in the docs.
DOCS_REPORT = HealthReport.from_results(
    [
        CheckResult("database", "pass", 0.0042, started_at=1_767_225_600.0),
        CheckResult(
            "search",
            "fail",
            2.0,
            "TimeoutError",
            critical=False,
            started_at=1_767_225_600.0,
        ),  # fmt: skip
    ],
    started_at=1_767_225_600.0,
)


def test_format_openmetrics_overrides_accept(app: Flask, detailed: HealthCheck) -> None:
    detailed.add_check(lambda: True, name="database")
    client = app.test_client()
    response = client.get("/health?format=openmetrics", headers={"Accept": "*/*"})
    assert response.status_code == 200
    found = validated(response)
    assert by_check(found["health_check_status"]) == {"database": 1.0}
    refused = client.get("/health/nope?format=openmetrics")
    assert refused.status_code == 404
    assert validated(refused) == {}


def test_prometheus_accept_header_gets_openmetrics(
    app: Flask, detailed: HealthCheck
) -> None:
    """Prometheus asks with ``;version=1.0.0``: a media type parameter."""
    detailed.add_check(lambda: True, name="database")
    response = app.test_client().get("/health", headers={"Accept": PROMETHEUS_ACCEPT})
    assert validated(response)["health_status"].samples[0].value == 1.0


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in this process: ``host:port``."""
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{LOOPBACK}:{server.port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_a_real_prometheus_scrapes_the_health_url(
    app: Flask, prometheus_server: StartPrometheus
) -> None:
    """Prometheus scrapes two apps' health URL (served at ``/metrics``,
    the path it scrapes by default) with its own ``Accept``. The warning
    one answers 200: ``up`` is 1 and its health series are stored. The
    failing one answers 500, and Prometheus keeps nothing of a scrape that
    is not a 200: ``up`` is 0 and no health series exists (what the docs
    tell users to alert on)."""
    health = with_details(app, URL="/metrics")
    health.add_check(lambda: True, name="database")
    health.add_check(lambda: CheckResult(status="warn"), name="disk")
    failing_app = Flask("failing")
    failing_app.config["TESTING"] = True
    with_details(failing_app, URL="/metrics").add_check(lambda: False, name="cache")
    with serving(app) as warning, serving(failing_app) as failing:
        server = prometheus_server([warning, failing], "groups: []\n")
        deadline = time.monotonic() + 20
        while server.query("count(up)") != {"": 2.0} or not server.query(
            "health_status"
        ):
            if time.monotonic() > deadline:
                pytest.fail(f"no health series scraped in 20 s:\n{server.tail()}")
            time.sleep(0.2)
        assert server.query(f'up{{instance="{warning}"}}') == {"": 1.0}
        assert server.query(f'up{{instance="{failing}"}}') == {"": 0.0}
        assert server.query("health_status") == {"": 0.5}
        assert server.query("health_check_status") == {"database": 1.0, "disk": 0.5}
