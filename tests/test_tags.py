"""One tag rule for every channel: a tag an endpoint declares is a valid,
possibly empty, selection; a tag nobody declares is a configuration error."""

from __future__ import annotations

import pytest
from click.testing import Result
from flask import Flask

from flask_healthcheck import ConfigurationError, HealthCheck

from .helpers import SUCCESS


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    """``/livez`` and ``/readyz`` declared; only ``ready`` has a check."""
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"], "/readyz": ["ready"]}
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database", tags=["ready"])
    return health


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["health", *args])


def test_an_endpoint_tag_without_checks_passes_over_http(
    app: Flask, health: HealthCheck
) -> None:
    response = app.test_client().get("/livez")
    assert (response.status_code, response.data) == (200, SUCCESS)


def test_an_endpoint_tag_without_checks_passes_in_flask_health(
    app: Flask, health: HealthCheck
) -> None:
    """Issue 10.4: ``/livez`` answered 200 while ``flask health --tag live``
    exited 2."""
    result = invoke(app, "--tag", "live")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "Health: pass (0 checks)"


def test_an_endpoint_tag_without_checks_passes_in_health_run(
    app: Flask, health: HealthCheck
) -> None:
    with app.app_context():
        report = health.run(tags=["live"])
    assert (report.status, report.checks) == ("pass", ())


def test_a_tag_of_an_endpoint_added_in_code_is_known(
    app: Flask, health: HealthCheck
) -> None:
    health.add_endpoint("/startupz", tags=["startup"])
    assert invoke(app, "--tag", "startup").exit_code == 0


def test_a_tag_only_a_check_carries_is_known(app: Flask, health: HealthCheck) -> None:
    health.add_check(lambda: False, name="search", tags=["search"])
    assert invoke(app, "--tag", "search").exit_code == 1


@pytest.mark.parametrize("tags", [["liev"], ["live", "liev"]])
def test_a_tag_nobody_declares_exits_2(
    app: Flask, health: HealthCheck, tags: list[str]
) -> None:
    result = invoke(app, *(arg for tag in tags for arg in ("--tag", tag)))
    assert result.exit_code == 2
    assert "No endpoint or check has the tag 'liev'" in result.stderr
    assert "known tags: 'live', 'ready'" in result.stderr
    assert result.stdout == ""


def test_a_tag_nobody_declares_is_a_configuration_error_in_health_run(
    app: Flask, health: HealthCheck
) -> None:
    with app.app_context(), pytest.raises(ConfigurationError, match="'liev'"):
        health.run(tags=["liev"])
