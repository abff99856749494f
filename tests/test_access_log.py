"""Quiet probes: docs/endpoints.md's ``ProbeAccessLogFilter`` recipes against a real
gunicorn access log and Werkzeug's development server, over loopback."""

from __future__ import annotations

import http.client
import logging
import logging.config
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from flask_healthcheck import ProbeAccessLogFilter

from .gunicorn import StartGunicorn
from .servers import LOOPBACK

PAGE = Path(__file__).parent.parent / "docs" / "endpoints.md"

APP = """
from flask import Flask

from flask_healthcheck import HealthCheck

app = Flask(__name__)
app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"], "/readyz": ["ready"]}
health = HealthCheck(app)
health.add_check(lambda: True, name="process", tags=["live"])
health.add_check(lambda: False, name="database", tags=["ready"])


@app.get("/orders")
def orders():
    return "user traffic"
"""

#: (method, URL, whether its line stays in the log).
REQUESTS = [
    ("GET", "/health/process", False),
    ("GET", "/livez", False),
    ("HEAD", "/livez", False),
    ("GET", "/livez?exclude=process", False),
    ("GET", "/readyz", True),  # failing: 500
    ("GET", "/health", True),  # failing: 500
    ("POST", "/livez", True),  # 405, and not a probe
    ("GET", "/health/nope", True),  # 404
    ("GET", "/orders", True),
    ("GET", "/livezz", True),  # another URL: 404
]


def readme_recipe(server: str) -> str:
    """The fenced Python block after the page's ``<!-- access-log: server -->``."""
    text = PAGE.read_text()
    found = re.search(
        rf"<!-- access-log: {server} -->\n```python\n(.*?)```", text, re.S
    )
    assert found is not None, f"{PAGE.name} has no {server} recipe"
    return found.group(1)


def send(port: int, method: str, url: str) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        connection.request(method, url, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def logged_requests(lines: list[str]) -> list[tuple[str, str]]:
    """The requests of access-log lines, sorted: a threaded server may log a
    request after it has answered the next one."""
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]  # colours
    found = [re.search(r'"([A-Z]+) (\S+) HTTP/1\.[01]"', line) for line in plain]
    return sorted((m.group(1), m.group(2)) for m in found if m)


def expected() -> list[tuple[str, str]]:
    return sorted((method, url) for method, url, stays in REQUESTS if stays)


def test_gunicorn_access_log_keeps_everything_but_successful_probes(
    gunicorn_server: StartGunicorn, tmp_path: Path
) -> None:
    """Issue 10.8: every probe was an access-log line."""
    access_log = tmp_path / "access.log"
    server = gunicorn_server(
        APP,
        config=readme_recipe("gunicorn"),
        args=["--access-logfile", str(access_log)],
    )
    for method, url, _ in REQUESTS:
        send(server.port, method, url)
    server.stop()  # flushes and closes the log
    lines = access_log.read_text().splitlines()
    assert logged_requests(lines) == expected(), "\n".join(lines)
    failing = [line for line in lines if "/readyz " in line or "/health " in line]
    assert len(failing) == 2 and all(" 500 " in line for line in failing)


class Recorder(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def werkzeug_records() -> Iterator[list[logging.LogRecord]]:
    """What the ``werkzeug`` logger lets through to a handler, with
    docs/endpoints.md's recipe applied (and removed after the test)."""
    logger = logging.getLogger("werkzeug")
    handler = Recorder(logging.INFO)
    records = handler.records
    filters, level = list(logger.filters), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    exec(readme_recipe("werkzeug"), {})
    yield records
    logger.removeHandler(handler)
    logger.filters[:] = filters
    logger.setLevel(level)


def test_werkzeug_access_log_keeps_everything_but_successful_probes(
    werkzeug_records: list[logging.LogRecord],
) -> None:
    namespace: dict[str, object] = {"__name__": "access_log_app"}
    exec(APP, namespace)
    app = namespace["app"]
    assert isinstance(app, Flask)
    server = make_server(LOOPBACK, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for method, url, _ in REQUESTS:
            send(server.port, method, url)
    finally:
        server.shutdown()
        thread.join(5)
    lines = [record.getMessage() for record in werkzeug_records]
    assert logged_requests(lines) == expected(), "\n".join(lines)


def test_the_filter_from_a_dict_config() -> None:
    """The ``logconfig_dict`` form docs/endpoints.md names."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {
                "probes": {
                    "()": "flask_healthcheck.ProbeAccessLogFilter",
                    "paths": ["/status"],
                }
            },
            "loggers": {"tests.access": {"filters": ["probes"]}},
        }
    )
    (made,) = logging.getLogger("tests.access").filters
    assert isinstance(made, ProbeAccessLogFilter)
    assert made.paths == ("/status",)


def test_records_of_other_loggers_pass() -> None:
    record = logging.LogRecord(
        "app",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /health HTTP/1.1", 200, 2),
        None,
    )
    assert ProbeAccessLogFilter().filter(record)


# -- the filter on records made by hand ----------------------------------------


def gunicorn_record(method: str, path: str, status: str) -> logging.LogRecord:
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(r)s %(s)s", None, None
    )
    record.args = {"m": method, "U": path, "s": status, "h": "-", "r": "-"}
    return record


def werkzeug_record(line: str, status: str) -> logging.LogRecord:
    return logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s %s', (line, status, "-"), None
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "kept"),
    [
        ("GET", "/health", "200", False),
        ("HEAD", "/health", "200", False),
        ("GET", "/health/database", "200", False),
        ("GET", "/healthz-admin", "200", True),
        ("GET", "/healthcheck", "200", True),
        ("GET", "/admin/health", "200", True),
        ("GET", "/health", "304", True),
        ("GET", "/health", "500", True),
        ("GET", "/health/nope", "404", True),
        ("POST", "/health", "200", True),
        ("get", "/health", "200", True),
        ("GET", "/", "200", True),
    ],
)
def test_the_filter_drops_only_successful_probes(
    method: str, path: str, status: str, kept: bool
) -> None:
    log_filter = ProbeAccessLogFilter(paths=["/health"])
    assert log_filter.filter(gunicorn_record(method, path, status)) is kept
    line = f"{method} {path} HTTP/1.1"
    assert log_filter.filter(werkzeug_record(line, status)) is kept


def test_the_filter_ignores_the_query_but_not_a_lookalike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_filter = ProbeAccessLogFilter(paths=["/health/"])
    assert not log_filter.filter(
        werkzeug_record("GET /health?x=/admin HTTP/1.1", "200")
    )
    assert log_filter.filter(werkzeug_record("GET /admin?/health/ HTTP/1.1", "200"))
    assert log_filter.filter(werkzeug_record("GET /%68ealth-x HTTP/1.1", "200"))
    assert log_filter.filter(werkzeug_record("garbage", "400"))
