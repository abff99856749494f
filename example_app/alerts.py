"""Alerting is a subscriber, not code inside a check."""

from __future__ import annotations

import logging

from flask import Flask

from flask_healthcheck import CheckResult, HealthReport
from flask_healthcheck.signals import check_failed, check_recovered, health_changed

logger = logging.getLogger("example_app.alerts")


def init_app(app: Flask) -> None:
    check_failed.connect(_on_failure, app)
    check_recovered.connect(_on_recovery, app)
    health_changed.connect(_on_change, app)


def _on_failure(app: Flask, result: CheckResult) -> None:
    logger.error("ALERT %s: check %r failed: %s", app.name, result.name, result.error)


def _on_recovery(app: Flask, result: CheckResult) -> None:
    logger.warning("RESOLVED %s: check %r passes again", app.name, result.name)


def _on_change(app: Flask, report: HealthReport, previous: str | None) -> None:
    logger.warning("%s health is now %s (was %s)", app.name, report.status, previous)
