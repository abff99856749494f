"""Every exception fails the check, ``BaseException`` included: nothing a
check, a factory, its teardown or a subscriber raises escapes into the server.

Probes run in a daemon thread (:func:`~tests.helpers.bounded`): an exception
that escapes the view, ``KeyboardInterrupt`` included, is reported as a test
failure there instead of stopping the test run.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Request
from werkzeug.test import TestResponse

from flask_healthcheck import HealthCheck, HealthReport
from flask_healthcheck.signals import health_checked

from .helpers import FAILURE, SUCCESS, bounded, wait_for


class Cancelled(BaseException):
    """A library's own ``BaseException``, as gevent's ``GreenletExit`` is."""


#: What a check may raise that is no ``Exception``.
ESCAPES: list[BaseException] = [
    SystemExit(0),
    KeyboardInterrupt(),
    GeneratorExit(),
    Cancelled("gave up"),
]


def details(request: Request) -> bool:
    return request.headers.get("X-Details") == "yes"


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = details
    return HealthCheck(app)


def probe(app: Flask, *, with_details: bool = False) -> TestResponse:
    headers = {"X-Details": "yes"} if with_details else {}
    return bounded(
        lambda: app.test_client().get("/health", headers=headers),
        5,
        "the probe",
    )


def assert_failed_with(app: Flask, name: str, error: BaseException) -> None:
    """The envelope's failure bytes, and with details the exception's type."""
    response = probe(app)
    assert (response.status_code, response.data) == (500, FAILURE)
    response = probe(app, with_details=True)
    assert response.status_code == 500
    checks = response.json["data"]["checks"]  # type: ignore[index]
    assert checks[name]["status"] == "fail"
    assert checks[name]["error"].startswith(type(error).__name__)


def raiser(error: BaseException) -> Callable[..., Any]:
    def raise_it(**kwargs: Any) -> None:
        raise error

    return raise_it


@pytest.mark.parametrize("error", ESCAPES, ids=lambda e: type(e).__name__)
def test_a_check_that_raises_a_base_exception_fails(
    app: Flask, health: HealthCheck, error: BaseException
) -> None:
    """Issue 8, defect 4: it escaped the view (and killed the server's worker)."""
    health.add_check(raiser(error), name="vendored")
    assert_failed_with(app, "vendored", error)


@pytest.mark.parametrize("error", ESCAPES, ids=lambda e: type(e).__name__)
def test_a_factory_that_raises_a_base_exception_fails_its_check(
    app: Flask, health: HealthCheck, error: BaseException
) -> None:
    health.add_service("database", raiser(error))
    health.add_check(lambda database: True, name="queries")
    assert_failed_with(app, "queries", error)


@pytest.mark.parametrize("error", ESCAPES, ids=lambda e: type(e).__name__)
def test_a_factory_teardown_that_raises_a_base_exception_fails_its_check(
    app: Flask, health: HealthCheck, error: BaseException
) -> None:
    def database() -> Iterator[str]:
        yield "connection"
        raise error

    health.add_service("database", database)
    health.add_check(lambda database: True, name="queries")
    assert_failed_with(app, "queries", error)


def test_an_async_check_cancelled_fails(app: Flask, health: HealthCheck) -> None:
    @health.check
    async def cancelled() -> bool:
        raise asyncio.CancelledError

    assert_failed_with(app, "cancelled", asyncio.CancelledError())


@pytest.mark.parametrize("error", ESCAPES, ids=lambda e: type(e).__name__)
def test_a_subscriber_that_raises_a_base_exception_changes_nothing(
    app: Flask,
    health: HealthCheck,
    error: BaseException,
    caplog: pytest.LogCaptureFixture,
) -> None:
    health.add_check(lambda: True, name="database")
    seen: list[HealthReport] = []

    def broken(sender: Flask, report: HealthReport) -> None:
        raise error

    def exporter(sender: Flask, report: HealthReport) -> None:
        seen.append(report)

    with (
        health_checked.connected_to(broken, app),
        health_checked.connected_to(exporter, app),
    ):
        for _ in range(3):
            response = probe(app)
            assert (response.status_code, response.data) == (200, SUCCESS)
        wait_for(lambda: len(seen) == 3, message="the other subscriber was skipped")
        wait_for(lambda: "A subscriber of the 'health-checked' signal" in caplog.text)


def test_the_command_line_exits_1_for_sys_exit_0_in_a_check(
    app: Flask, health: HealthCheck
) -> None:
    @health.check
    def vendored() -> None:
        sys.exit(0)

    result = bounded(
        lambda: app.test_cli_runner().invoke(args=["health"]), 5, "flask health"
    )
    assert result.exit_code == 1, result.output
    assert "SystemExit" in result.output
