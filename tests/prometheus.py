"""A real Prometheus server on loopback, and ``promtool``, for tests.

``prometheus_server(targets, rules=...)`` starts Debian's ``prometheus``
scraping ``targets`` (``host:port``) every second and evaluating ``rules``
(a rule file's text) every second, on a free port of 127.0.0.1, with its
storage in the test's temporary directory. What a test may rely on:

- The call returns once the server answers ``/-/ready``; it fails the test
  after :data:`START_SECONDS`.
- :meth:`PrometheusServer.query` and :meth:`PrometheusServer.alerts` ask the
  HTTP API with a timeout; they never hang.
- The server is stopped at teardown (SIGTERM, then SIGKILL).

A missing ``prometheus`` or ``promtool`` skips the test, or fails it when
``CI`` is set, like the other server fixtures.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .processes import LoggedServer, Started
from .server_fixtures import skip_or_fail_missing
from .servers import LOOPBACK, BinaryNotFoundError, find_free_port

#: Seconds for Prometheus to start and answer ``/-/ready``.
START_SECONDS = 15.0

_INSTALL = "apt-get install prometheus (Debian: prometheus and promtool)"


def require_binary(name: str) -> str:
    """The path of ``name`` (``prometheus`` or ``promtool``), or skip the
    test (fail it under ``CI``)."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail_missing(BinaryNotFoundError(name, _INSTALL))
    return path


_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [{rules}]
scrape_configs:
  - job_name: app
    static_configs:
      - targets: {targets}
"""


class PrometheusServer(LoggedServer):
    """A Prometheus started by a test; see the module docstring."""

    name = "prometheus"
    stop_seconds = 5
    tail_lines = 20

    def __init__(self, directory: Path, targets: list[str], rules: str) -> None:
        self.directory = directory
        port = find_free_port()
        (directory / "rules.yml").write_text(rules)
        config = directory / "prometheus.yml"
        config.write_text(
            _CONFIG.format(rules=json.dumps("rules.yml"), targets=json.dumps(targets))
        )
        command = [
            require_binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--log.level=warn",
        ]
        log = directory / "prometheus.log"
        super().__init__(command, log, port=port, cwd=directory)

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def wait_until_ready(self, timeout: float = START_SECONDS) -> None:
        """Return once the server answers ``/-/ready``."""

        def ready() -> bool:
            answer = self.get("/-/ready", 1)
            return answer is not None and answer.status == 200

        self.wait_until(ready, timeout)

    def _api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(self.url(f"{path}?{query}"), timeout=2) as r:
            answer = json.load(r)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> dict[str, float]:
        """An instant query: each series' value by its ``check`` label."""
        data = self._api("/api/v1/query", query=expr)
        return {
            item["metric"].get("check", ""): float(item["value"][1])
            for item in data["result"]
        }

    def alerts(self) -> dict[str, str]:
        """Active alerts: ``"<alertname> <check>"`` to their state
        (``pending`` or ``firing``)."""
        data = self._api("/api/v1/alerts")
        return {
            f"{a['labels']['alertname']} {a['labels'].get('check', '')}": a["state"]
            for a in data["alerts"]
        }


#: ``prometheus_server(targets, rules)``
StartPrometheus = Callable[[list[str], str], PrometheusServer]


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start Prometheus on loopback; see the module docstring."""
    require_binary("prometheus")
    started = Started[PrometheusServer](tmp_path, "prometheus")

    def start(targets: list[str], rules: str) -> PrometheusServer:
        server = started.add(PrometheusServer(started.directory(), targets, rules))
        server.wait_until_ready()
        return server

    yield start
    started.stop()
