"""The routes: HTTP in, a report out. A view picks the checks from the URL
and the query, and the format from the app's
:class:`~flask_healthcheck.format_registry.FormatRegistry`; running them is
the runner's job, rendering the report that of the format.

Routes known at ``init_app`` (the main URL, ``HEALTHCHECK_ENDPOINTS`` and
endpoints added to the extension before) go on a blueprint built for that
app. A blueprint can't gain rules once registered, so an endpoint added
after ``init_app`` goes straight onto the app's URL map, under the same
``healthcheck.`` endpoint names.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Container, Iterable, Sequence
from functools import lru_cache, partial
from hashlib import sha256

from flask import Blueprint, Flask, Request, Response, request
from werkzeug.exceptions import BadHost, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from . import formats
from .checks import Check, CheckResult, HealthReport
from .config import Settings
from .drain import draining_report, is_readiness
from .endpoints import HISTORY, OPENAPI, PAGE_ASSETS, Endpoint, describe
from .errors import ConfigurationError
from .format_registry import ENVELOPE, HEADERS, answer
from .history import Snapshot, history_document
from .page_assets import ASSET_HEADERS, ASSET_VERSION, ASSETS, STYLESHEET, icon
from .redact import describe_exception, redact
from .state import HealthCheckState, get_state

logger = logging.getLogger("flask_healthcheck")

#: The blueprint's name, so endpoint names are ``healthcheck.<name>``.
BLUEPRINT_NAME = "healthcheck"

#: Unknown names echoed back in ``input_errors`` at most; the rest counted.
MAX_NAMES_SHOWN = 5

View = Callable[..., Response]


def make_blueprint(endpoints: Iterable[Endpoint]) -> Blueprint:
    """A new blueprint per app: its rules come from that app's config."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)
    taken: set[str] = set()
    for endpoint in endpoints:
        for rule, name, view in _routes(endpoint, taken):
            taken.add(name)
            blueprint.add_url_rule(
                rule, name, view, methods=["GET"], provide_automatic_options=False
            )
    # The main URL's page assets need no rules of their own: ``<url>/<check>``
    # answers them (see respond). Each rule costs Werkzeug ~0.2 ms to compile,
    # paid by every app (issue 20: init_app at most 1 ms over Flask()).
    return blueprint


def add_routes(app: Flask, endpoint: Endpoint) -> None:
    """Route an endpoint added after the blueprint was registered."""
    taken = {
        name.removeprefix(f"{BLUEPRINT_NAME}.")
        for name in app.view_functions
        if name.startswith(f"{BLUEPRINT_NAME}.")
    }
    for rule, name, view in _routes(endpoint, taken):
        app.add_url_rule(
            rule,
            f"{BLUEPRINT_NAME}.{name}",
            view,
            methods=["GET"],
            provide_automatic_options=False,
        )


def _routes(endpoint: Endpoint, taken: Container[str]) -> list[tuple[str, str, View]]:
    """The endpoint's URL, and ``<url>/<name>`` for one check.

    Endpoint names: ``health`` and ``health_check`` for the main URL, and
    ``endpoint_livez`` and ``endpoint_livez_check`` for ``/livez``.
    """
    if endpoint.tags is None:
        name = "health"
    else:
        name = "endpoint" + re.sub(r"\W", "_", endpoint.url, flags=re.ASCII)
    unique, number = name, 1
    while unique in taken or f"{unique}_check" in taken:
        number += 1
        unique = f"{name}_{number}"

    def view(check: str | None = None) -> Response:
        return respond(endpoint, check)

    view.__name__ = unique
    base = endpoint.url.rstrip("/")
    return [
        (endpoint.url, unique, view),
        # ``path`` so that ``/health/a/b`` also answers an envelope 404.
        (f"{base}/<path:check>", f"{unique}_check", view),
    ]


class _Refused(Exception):
    """The request names checks that don't exist: a 4xx, not a run."""

    def __init__(self, code: int, errors: dict[str, str]) -> None:
        super().__init__(code, errors)
        self.code = code
        self.errors = errors


def respond(endpoint: Endpoint, check: str | None) -> Response:
    """Run the endpoint's checks (or one of them) and answer in the
    format the client accepts."""
    state = get_state()
    if check == HISTORY and endpoint.tags is None:
        return respond_history(state)
    if check in PAGE_ASSETS and endpoint.tags is None:  # the main URL's
        return respond_asset(check)
    if check == OPENAPI and endpoint.tags is None:
        # Imported here, not at the top, for start-up cost (issue 20).
        from .openapi import openapi_response

        return openapi_response(state, details_allowed(state.settings), HEADERS)
    # The request itself, not the proxy: looked up once, not at each use.
    current = request._get_current_object()  # type: ignore[attr-defined]
    chosen = state.formats().choose(current)
    if chosen is None:  # a ?format= that names no format: nothing runs
        return refusal(406, {})
    details = details_allowed(state.settings)
    pending = None
    try:
        checks = select(state, endpoint, check, current)
        if details and chosen.sections:  # they run while the checks do
            pending = state.start_sections()
        if state.draining and is_readiness(endpoint):
            report = draining_report()
        else:
            report = state.run(checks)
    except _Refused as refused:
        return refusal(refused.code, refused.errors)
    except ConfigurationError as e:
        logger.error("The health configuration is wrong: %s", e)
        report = configuration_failure(e)
    history = None
    if chosen.history:
        history = page_history(state, endpoint, check, report, details)
    context = formats.RenderContext(
        details,
        state.settings,
        state.component_types(),
        history,
        assets_url(state, current),
        sections=pending.values() if pending is not None else {},
    )
    return answer(
        chosen,
        partial(chosen.render, report, context),
        partial(formats.envelope, report, details=details),
        status_code(report, state.settings),
    )


def refusal(
    code: int, errors: dict[str, str], headers: dict[str, str] | None = None
) -> Response:
    """A 4xx in the format the client accepts: ``input_errors`` in the
    envelope, ``output`` in health+json, a page in HTML. With a
    ``?format=`` that names no format, the envelope says that too."""
    state = get_state()
    registry = state.formats()
    chosen = registry.choose(request)
    if chosen is None:
        chosen, errors = ENVELOPE, {**errors, **registry.unknown_format(request)}
    # They echo the request (its path, its query): redacted here once, for
    # every format, as every other text shown is.
    errors = {key: redact(message) for key, message in errors.items()}
    context = formats.RenderContext(
        details_allowed(state.settings), state.settings, assets=assets_url(state)
    )
    return answer(
        chosen,
        partial(chosen.render_error, code, errors, context),
        partial(formats.envelope_error, errors),
        code,
        headers,
    )


def assets_url(state: HealthCheckState, current: Request | None = None) -> str:
    """Where the page's assets are: the main URL, with the script root."""
    script_root = (request if current is None else current).script_root
    return script_root + state.settings.url.rstrip("/")


@lru_cache(maxsize=16)  # the stylesheet and one icon per colour
def _asset_etag(body: str) -> str:
    return f"{ASSET_VERSION}-{sha256(body.encode()).hexdigest()[:8]}"


def respond_asset(asset: str) -> Response:
    """``<url>/status.css`` and ``<url>/status.svg?status=fail``: the
    status page's stylesheet and icon, from the app's own origin so that
    ``default-src 'self'`` allows them. Runs no check."""
    if asset == "status.css":
        body = STYLESHEET
    else:
        body = icon(request.args.get("status", "other"))
    response = Response(body, mimetype=ASSETS[asset], headers=ASSET_HEADERS)
    response.set_etag(_asset_etag(body))
    response.make_conditional(request)
    return response


def answer_routing_error(current: Request) -> Response | None:
    """Answer ``current``, under the health URLs, that matched no route.

    Called before the app's ``before_request`` hooks (see
    :mod:`~flask_healthcheck.hooks`; Flask runs those before it raises the
    routing error): a refused method, ``/health/`` with a trailing slash
    and a redirect that merges slashes get the extension's own answer, in
    the negotiated format and with ``Cache-Control: no-store``, instead of
    Werkzeug's HTML, which a probe or a cache would misread. Requests
    elsewhere in the app, and the app's own routes on these URLs, are left
    alone.
    """
    error = current.routing_exception
    if error is None:
        return None
    url = health_url(get_state().endpoints(), current.path)
    if url is None:
        return None
    if isinstance(error, RequestRedirect):
        return Response(
            status=error.code, headers={**HEADERS, "Location": error.new_url}
        )
    if isinstance(error, MethodNotAllowed):
        allowed = set(error.valid_methods or ()) | {"GET", "HEAD"}
        ordered = ["GET", "HEAD", *sorted(allowed - {"GET", "HEAD"})]
        message = f"the method {current.method} is not allowed here; use GET or HEAD"
        return refusal(405, {"method": message}, {"Allow": ", ".join(ordered)})
    if isinstance(error, NotFound) and current.path == url.rstrip("/") + "/":
        message = f"no check name after {current.path!r}; the endpoint is {url!r}"
        return refusal(404, {"check": message})
    if isinstance(error, NotFound):
        return refusal(404, {"url": f"unknown URL {describe(current.path)}"})
    if isinstance(error, BadHost):  # a Host that Werkzeug can't bind a URL map to
        return refusal(400, {"host": "the Host header is not a valid host name"})
    return None


def health_url(endpoints: Iterable[Endpoint], path: str) -> str | None:
    """The URL of the endpoint that ``path`` is, or is under, if any."""
    for endpoint in endpoints:
        url = endpoint.url
        if path == url or (url != "/" and path.startswith(url + "/")):
            return url
    return None


def page_history(
    state: HealthCheckState,
    endpoint: Endpoint,
    check: str | None,
    report: HealthReport,
    details: bool,
) -> Snapshot:
    """The recent past the status page shows: with details, each reported
    check's; the app's overall status only on the page about every check
    (the main URL, nothing excluded), where it is what the banner shows."""
    everything = (
        endpoint.tags is None
        and check is None
        and not any(request.args.getlist("exclude"))
    )
    names = [result.name for result in report.checks] if details else ()
    return state.history.snapshot(names, overall=everything)


def select(
    state: HealthCheckState, endpoint: Endpoint, check: str | None, current: Request
) -> Sequence[Check]:
    """The endpoint's checks, or the one named in the URL, less
    ``?exclude=``. Raises :class:`_Refused` for a name that is no check."""
    selected = state.select(tags=endpoint.tags)
    if check is not None:
        selected = tuple(c for c in selected if c.name == check)
        if not selected:
            raise _Refused(404, {"check": f"unknown check {describe(check)}"})
    # Empty values (``?exclude=``) are ignored, repeated ones count once.
    exclude = {name for name in current.args.getlist("exclude") if name}
    if not exclude:
        return selected
    unknown = exclude.difference(c.name for c in state.checks())
    if unknown:
        raise _Refused(400, {"exclude": _unknown(unknown)})
    return [c for c in selected if c.name not in exclude]


def configuration_failure(error: ConfigurationError) -> HealthReport:
    """A report with one failing ``configuration`` check: a mistake in the
    health setup must look unhealthy, not crash the endpoint."""
    return HealthReport.from_results(
        [
            CheckResult(
                name="configuration", status="fail", error=describe_exception(error)
            )
        ]
    )


def _unknown(names: set[str]) -> str:
    shown = sorted(names)[:MAX_NAMES_SHOWN]
    text = ", ".join(describe(name) for name in shown)
    if len(names) > len(shown):
        text += f" and {len(names) - len(shown)} more"
    return f"unknown check{'s' if len(names) > 1 else ''} {text}"


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
    except BaseException:  # a SystemExit there must not reach the server
        logger.exception("HEALTHCHECK_SHOW_DETAILS raised; details are hidden.")
        return False


def respond_history(state: HealthCheckState) -> Response:
    """``<url>/history``: this process's recent results as JSON, whatever
    the ``Accept``. Runs no check. Without details only the overall status
    per run shows; with them, each check's results too (``?check=`` picks
    some). ``?limit=`` caps the results shown per series; the document is
    bounded whatever the number of checks (see
    :func:`~flask_healthcheck.history.series_limit`)."""
    details = details_allowed(state.settings)
    history = state.history
    try:
        limit = _history_limit(history.max_results)
        names = _history_checks(state) if details else ()
    except _Refused as refused:
        return refusal(refused.code, refused.errors)
    snapshot = history.snapshot(names)
    return Response(
        json.dumps(history_document(snapshot, details=details, limit=limit)),
        mimetype="application/json",
        headers=HEADERS,
    )


def _history_limit(most: int) -> int | None:
    """``?limit=``: results per series, a whole number from 0 to ``most``."""
    value = request.args.get("limit")
    if value is None:
        return None
    # The length first: int() refuses over 4,300 digits (a 500, not a 400).
    if not (value.isascii() and value.isdigit() and len(value) < 10) or (
        int(value) > most
    ):
        message = f"must be a whole number from 0 to {most}, got {describe(value)}"
        raise _Refused(400, {"limit": message})
    return int(value)


def _history_checks(state: HealthCheckState) -> Sequence[str]:
    """The checks ``?check=`` names (repeatable), or all; in their order."""
    try:
        known = [check.name for check in state.checks()]
    except ConfigurationError:  # the runs recorded still have a history
        known = state.history.names()
    wanted = {name for name in request.args.getlist("check") if name}
    if not wanted:
        return known
    unknown = wanted.difference(known)
    if unknown:
        raise _Refused(400, {"check": _unknown(unknown)})
    return [name for name in known if name in wanted]
