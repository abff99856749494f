"""The Prometheus gauges and the alert rules shipped in ``docs/prometheus``.

Several workers and a real Prometheus server are in ``tests/test_fleet.py``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from flask import Flask
from prometheus_client import CollectorRegistry
from werkzeug.test import Client

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, Status
from flask_healthcheck.contrib.prometheus import init_prometheus, make_metrics_app

from .prometheus import require_binary

RULES = Path(__file__).parent.parent / "docs" / "prometheus"


def report(status: Status, started_at: float) -> HealthReport:
    result = CheckResult(
        name="database", status=status, duration=0.25, started_at=started_at
    )
    return HealthReport.from_results([result])


def test_the_last_run_timestamp_says_when_the_check_ran(app: Flask) -> None:
    registry = CollectorRegistry()
    metrics = init_prometheus(app, registry)
    metrics.update(report("pass", 1_700_000_000.0))
    assert registry.get_sample_value(
        "health_check_last_run_timestamp_seconds", {"check": "database"}
    ) == (1_700_000_000.25)


def test_a_result_already_exported_is_not_written_again(app: Flask) -> None:
    """In multiprocess mode the gauge written last wins: a worker that
    answers a probe from its cache must not write its older result over
    the newer one another worker wrote meanwhile."""
    registry = CollectorRegistry()
    metrics = init_prometheus(app, registry)
    now = time.time()
    cached = report("pass", now - 5)
    metrics.update(cached)
    metrics.update(report("fail", now))
    metrics.update(cached)  # older: the same result, reused from the cache
    status = registry.get_sample_value("health_check_status", {"check": "database"})
    assert status == 0.0


def test_a_wall_clock_step_back_never_freezes_the_gauges(app: Flask) -> None:
    """After the clock is set back an hour every new result starts
    "earlier" than the last one exported: it is still newer, and written."""
    registry = CollectorRegistry()
    metrics = init_prometheus(app, registry)
    now = time.time()
    metrics.update(report("pass", now))
    metrics.update(report("fail", now - 3600))  # ran after the step back
    status = registry.get_sample_value("health_check_status", {"check": "database"})
    assert status == 0.0
    last_run = registry.get_sample_value(
        "health_check_last_run_timestamp_seconds", {"check": "database"}
    )
    assert last_run == now - 3600 + 0.25


def test_the_metrics_app_serves_the_registry_in_one_process(
    app: Flask, health: HealthCheck
) -> None:
    registry = CollectorRegistry()
    init_prometheus(app, registry)
    health.add_check(lambda: True, name="database")
    app.test_client().get("/health")
    response = Client(make_metrics_app(registry)).get("/")
    text = response.get_data(as_text=True)
    assert 'health_check_status{check="database"} 1.0' in text
    assert 'health_check_last_run_timestamp_seconds{check="database"}' in text


def test_the_shipped_alert_rules_pass_their_unit_tests() -> None:
    """``promtool test rules``: failing for 2 minutes, failing on half the
    fleet, warning for 15 minutes, stale results, flapping."""
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", "health-rules.test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
