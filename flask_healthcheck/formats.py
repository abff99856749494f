"""Turning a report into response bodies. Views negotiate; this renders.

One renderer per media type, the built-in ones listed in :data:`FORMATS`
(the registry that serves them, with those an app adds, is
:mod:`~flask_healthcheck.format_registry`). Every renderer gets the same
:class:`RenderContext`, so whether details show is decided once, by the
view, and no format can show more than another.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.utils import get_content_type

from .checks import CheckResult, HealthReport
from .config import Settings
from .history import iso_time
from .plain_text import plain_text, plain_text_error
from .redact import redact, redact_value
from .render_context import RenderContext as RenderContext  # views, cli build it
from .status_page import (
    CONTENT_SECURITY_POLICY,
    render_error_page,
    render_status_page,
)

#: Headers on every answer, in every format: probes and dashboards must
#: never see a stale answer from a cache, and one URL serves several formats.
HEADERS = {"Cache-Control": "no-store", "Vary": "Accept"}

#: The envelope's ``status`` values: a warn still serves traffic.
ENVELOPE_STATUS = {"pass": "success", "warn": "success", "fail": "failure"}


@dataclass(frozen=True)
class Format:
    """A media type and its two renderers."""

    mimetype: str
    #: Renders a report (text, sent as UTF-8, or bytes).
    render: Callable[[HealthReport, RenderContext], str | bytes]
    #: Renders a request the view refused: the HTTP status and
    #: ``input_errors`` (``{"exclude": "unknown check 'x'"}``), their
    #: messages redacted already (by the view, once for every format).
    render_error: Callable[[int, Mapping[str, str], RenderContext], str | bytes]
    #: Headers of its own, added to every answer in this format.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Its name in ``?format=`` (``json``, ``health+json``, ``html``).
    name: str = ""
    #: Whether it shows the recent past: the view then puts the history
    #: in :attr:`RenderContext.history`.
    history: bool = False
    #: The ``Content-Type`` when the media type alone won't do (parameters
    #: such as OpenMetrics' ``version=1.0.0``); empty for ``mimetype``.
    content_type: str = ""
    #: Whether it shows the sections: the view then runs them, when details
    #: are allowed, and puts them in :attr:`RenderContext.sections`.
    sections: bool = False

    #: Every header of an answer in this format but its length:
    #: :data:`HEADERS`, its own, then its ``Content-Type``. Worked out when
    #: the format is made, not at each answer (a dict merged, a media type
    #: looked up: a few microseconds of every probe), nor lazily at its
    #: first: 3.11's ``cached_property`` takes one lock for every format,
    #: which a fork can leave held forever in the child.
    response_headers: list[tuple[str, str]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        headers = Headers({**HEADERS, **self.headers})
        headers["Content-Type"] = self.content_type or get_content_type(
            self.mimetype, "utf-8"
        )
        object.__setattr__(self, "response_headers", headers.to_wsgi_list())


# -- the clearskies envelope ---------------------------------------------------


def shown_error(result: CheckResult) -> str | None:
    """The result's error, redacted again as it is shown: a result may come
    from anywhere (a check's own ``CheckResult``), and redaction is cheap."""
    return None if result.error is None else redact(result.error)


def check_details(report: HealthReport) -> dict[str, dict[str, Any]]:
    """Per-check results as shown when details are allowed."""
    return {
        result.name: {
            "status": result.status,
            "duration_ms": round(result.duration * 1000, 1),
            "error": shown_error(result),
        }
        for result in report.checks
    }


def envelope(report: HealthReport, *, details: bool) -> str:
    """The clearskies envelope, byte for byte as clearskies 1.x writes it.

    ``json.dumps`` with its defaults gives clearskies' key order and spacing;
    Flask's ``jsonify`` would sort the keys and drop the spaces.
    """
    status = ENVELOPE_STATUS[report.status]
    if not details:
        return _PLAIN_ENVELOPES[status]
    return _envelope_json(status, {"checks": check_details(report)})


def envelope_error(errors: Mapping[str, str]) -> str:
    """A failure envelope whose ``input_errors`` say what was wrong."""
    return _envelope_json("failure", [], dict(errors))


def _envelope_json(
    status: str, data: Any, input_errors: dict[str, str] | None = None
) -> str:
    return json.dumps(
        {
            "status": status,
            "error": "",
            "data": data,
            "pagination": {},
            "input_errors": input_errors or {},
        }
    )


#: What nearly every probe gets: the envelope's two answers, written once.
_PLAIN_ENVELOPES = {
    "success": _envelope_json("success", {}),
    "failure": _envelope_json("failure", []),
}


def _render_envelope(report: HealthReport, context: RenderContext) -> str:
    return envelope(report, details=context.details)


def _render_envelope_error(
    code: int, errors: Mapping[str, str], context: RenderContext
) -> str:
    return envelope_error(errors)


# -- application/health+json ---------------------------------------------------


def _json_value(value: Any) -> Any:
    """A check's observed value as JSON can carry it: what ``json.dumps``
    can't write, or would write as invalid JSON (NaN), becomes a string.
    Text is redacted: a check may observe a connection string."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return redact_value(value)


def _check_object(
    result: CheckResult, report: HealthReport, context: RenderContext
) -> dict[str, Any]:
    started_at = result.started_at or report.started_at
    item: dict[str, Any] = {"status": result.status, "time": iso_time(started_at)}
    if not context.details:
        return item
    component_type = context.component_types.get(result.name)
    if component_type:
        item["componentType"] = component_type
    if result.observed_value is not None:
        item["observedValue"] = _json_value(result.observed_value)
        if result.observed_unit:
            item["observedUnit"] = result.observed_unit
    else:
        item["observedValue"] = round(result.duration * 1000, 1)
        item["observedUnit"] = "ms"
    if result.error:
        item["output"] = shown_error(result)
    return item


def service_fields(settings: Settings) -> dict[str, str]:
    """What the config says about the service, by its health+json name,
    redacted as it is shown (health+json, the page, the OpenAPI document):
    a description may quote a connection string."""
    fields = {
        "version": settings.version,
        "releaseId": settings.release_id,
        "serviceId": settings.service_id,
        "description": settings.description,
    }
    return {key: redact(value) for key, value in fields.items() if value is not None}


def health_document(report: HealthReport, context: RenderContext) -> dict[str, Any]:
    """The report as draft-inadarei-api-health-check-06 describes it.

    ``checks`` is keyed by check name, each an array of one object with
    ``status`` and ``time``; with details also ``observedValue`` (the
    check's own, or its duration in ms), ``observedUnit``, ``output`` (the
    redacted error) and ``componentType``; with details, each section
    (``health.add_section``) is a top-level field too.
    """
    return {
        "status": report.status,
        **service_fields(context.settings),
        "checks": {
            result.name: [_check_object(result, report, context)]
            for result in report.checks
        },
        **(context.sections if context.details else {}),
    }


def health_json(report: HealthReport, context: RenderContext) -> str:
    return json.dumps(health_document(report, context))


def health_json_error(
    code: int, errors: Mapping[str, str], context: RenderContext
) -> str:
    """A ``fail`` document whose ``output`` says what was wrong."""
    return json.dumps(
        {
            "status": "fail",
            **service_fields(context.settings),
            "output": "; ".join(errors.values()),
        }
    )


# -- text/html -----------------------------------------------------------------


def html_page(report: HealthReport, context: RenderContext) -> str:
    """The status page for people; see :mod:`flask_healthcheck.status_page`."""
    fields = service_fields(context.settings)
    return render_status_page(
        report,
        details=context.details,
        refresh=context.settings.html_refresh,
        title=fields.get("serviceId"),
        description=fields.get("description"),
        version=fields.get("version"),
        release=fields.get("releaseId"),
        history=context.history,
        assets=context.assets,
        sections=[
            (name, section_text(value))
            for name, value in (context.sections if context.details else {}).items()
        ],
    )


def section_text(value: Any) -> str:
    """A section's value as the page shows it: a string as it is, anything
    else as indented JSON (the page escapes it)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def html_error(code: int, errors: Mapping[str, str], context: RenderContext) -> str:
    title = service_fields(context.settings).get("serviceId")
    return render_error_page(code, errors, title=title, assets=context.assets)


# -- OpenMetrics ---------------------------------------------------------------

# :mod:`~flask_healthcheck.openmetrics` loads on the first scrape, not with the
# extension: for start-up cost (issue 20), as most apps are never scraped.

#: The media type offered in negotiation.
OPENMETRICS = "application/openmetrics-text"
#: The full ``Content-Type``: scrapers pick their parser by ``version``.
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


# -- RSS and Atom --------------------------------------------------------------

# :mod:`~flask_healthcheck.feeds` (and the XML writer under it) load on the
# first feed asked for, not with the extension: for start-up cost (issue 20),
# as most apps never serve one.

RSS = "application/rss+xml"
ATOM = "application/atom+xml"


def _lazy(module: str, renderer: str) -> Callable[..., str]:
    """``module.renderer``, imported on its first call (for start-up cost,
    issue 20: most apps never serve these formats)."""

    def call(*args: Any) -> str:
        render: Callable[..., str] = getattr(
            importlib.import_module(f".{module}", __package__), renderer
        )
        return render(*args)

    return call


#: The built-in formats by media type; the first is the default for ``*/*``,
#: a missing or malformed ``Accept``, or one that matches nothing. Adding
#: one is one entry here, with its ``name=``: negotiation, ``?format=``, HEAD,
#: the headers and the status codes are the registry's and the view's.
FORMATS: dict[str, Format] = {
    format.mimetype: format
    for format in (
        Format(
            "application/json",
            _render_envelope,
            _render_envelope_error,
            name="json",
        ),
        Format(
            "application/health+json",
            health_json,
            health_json_error,
            name="health+json",
            sections=True,
        ),
        Format(
            "text/html",
            html_page,
            html_error,
            {
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Frame-Options": "DENY",
            },
            name="html",
            history=True,
            sections=True,
        ),
        Format(
            "text/plain",
            plain_text,
            plain_text_error,
            name="text",
            content_type="text/plain; charset=utf-8",
            sections=True,
        ),
        Format(
            OPENMETRICS,
            _lazy("openmetrics", "render"),
            _lazy("openmetrics", "render_error"),
            name="openmetrics",
            content_type=OPENMETRICS_CONTENT_TYPE,
        ),
        Format(
            mimetype=RSS,
            render=_lazy("feeds", "rss"),
            render_error=_lazy("feeds", "rss_error"),
            name="rss",
            history=True,
        ),
        Format(
            mimetype=ATOM,
            render=_lazy("feeds", "atom"),
            render_error=_lazy("feeds", "atom_error"),
            name="atom",
            history=True,
        ),
    )
}
