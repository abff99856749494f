"""The example app's checks: a service, checks with injected parameters."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck

health = HealthCheck()


@health.service("database")
def database(app: Flask) -> Iterator[sa.Connection]:
    """A connection from the app's engine; given back after the check."""
    engine: sa.Engine = app.extensions["example_engine"]
    with engine.connect() as connection:
        yield connection


@health.check(tags=("ready",))
def schema_ready(database: sa.Connection) -> bool:
    """The app can't serve without its table: fail until it exists."""
    return sa.inspect(database).has_table("notes")


@health.check(critical=False, tags=("ready",))
def disk_space(app: Flask, config: Any) -> CheckResult:
    """Little room left is a warning, not an outage."""
    usage = shutil.disk_usage(app.instance_path)
    free = usage.free / usage.total * 100
    if free < config.get("MIN_FREE_DISK_PERCENT", 5):
        return CheckResult(
            status="warn",
            error=f"only {free:.1f}% of the disk is free",
            observed_value=round(free, 1),
            observed_unit="%",
        )
    return CheckResult(observed_value=round(free, 1), observed_unit="%")
