"""The blueprint: HTTP in, a report out. Running is the runner's job."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from . import formats
from .checks import CheckResult, HealthReport
from .config import Settings
from .errors import ConfigurationError
from .redact import describe_exception

logger = logging.getLogger("flask_healthcheck")


def make_blueprint(settings: Settings) -> Blueprint:
    """A new blueprint per app: its rules come from that app's config."""
    blueprint = Blueprint("healthcheck", __name__)
    blueprint.add_url_rule(
        settings.url,
        "health",
        health_view,
        methods=["GET"],
        provide_automatic_options=False,
    )
    return blueprint


def health_view() -> Response:
    from .extension import get_state

    state = get_state()
    try:
        report = state.run()
    except ConfigurationError as e:
        logger.error("The health configuration is wrong: %s", e)
        report = HealthReport.from_results(
            [
                CheckResult(
                    name="configuration", status="fail", error=describe_exception(e)
                )
            ]
        )
    details = details_allowed(state.settings)
    body = formats.envelope(report, details=details)
    return Response(
        body,
        status=status_code(report, state.settings),
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )


def status_code(report: HealthReport, settings: Settings) -> int:
    if report.status == "fail":
        return settings.failure_status
    if report.status == "warn":
        return settings.warn_status
    return 200


def details_allowed(settings: Settings) -> bool:
    """``HEALTHCHECK_SHOW_DETAILS``: a bool, or a function of the request."""
    show = settings.show_details
    if isinstance(show, bool):
        return show
    try:
        return bool(show(request))
    except Exception:
        logger.exception("HEALTHCHECK_SHOW_DETAILS raised; details are hidden.")
        return False
