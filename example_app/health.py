"""The example app's checks: a service, checks with injected parameters."""

from __future__ import annotations

import hmac
import shutil
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request, current_app

from flask_healthcheck import CheckResult, HealthCheck

health = HealthCheck()

#: Headers a proxy adds: a request that has one did not come straight from
#: this machine, whatever its address says.
FORWARDED = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def show_details(request: Request) -> bool:
    """``HEALTHCHECK_SHOW_DETAILS``: whether ``request`` may see per-check results.

    Yes with the right ``X-Health-Token`` header (``HEALTH_TOKEN``), compared
    in constant time. In debug mode also for a browser on this machine, but
    only straight, not through a proxy: behind a same-host nginx every
    client's address is 127.0.0.1.
    """
    token = current_app.config.get("HEALTH_TOKEN")
    if token:
        given = request.headers.get("X-Health-Token", "")
        if hmac.compare_digest(given.encode(), token.encode()):
            return True
    return (
        current_app.debug
        and request.remote_addr in ("127.0.0.1", "::1")
        and not any(header in request.headers for header in FORWARDED)
    )


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
