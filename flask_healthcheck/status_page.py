"""The HTML status page for people.

It has no inline style or script and no ``style=`` attribute: its
stylesheet and icon come from the extension's own URLs
(:mod:`~flask_healthcheck.page_assets`), so it renders fully under an app's
``Content-Security-Policy: default-src 'self'`` (Flask-Talisman's default)
as under its own :data:`CONTENT_SECURITY_POLICY`; it reloads itself with
``<meta http-equiv="refresh">``, which no policy blocks. Rendered with a
Jinja environment of its own with autoescaping on: check names, errors and
the service description come from code and exceptions, and every one of
them is escaped. The app's own templates and loaders are not involved.

With a :class:`~flask_healthcheck.history.Snapshot` the page also shows the
recent past as inline SVG (drawn by :mod:`~flask_healthcheck.strips`): a
strip of cells, one per run, coloured by status, with the run's time on
hover; the uptime and the transitions over the window; since when the
current status holds; and, per check, the duration trend as a sparkline.
It stays small with many checks: a page draws
:data:`~flask_healthcheck.strips.CELL_BUDGET` cells at the most (a cell
then covers several runs, coloured by the worst, its title counting
them), hover titles only on small pages, and with too many checks for
:data:`~flask_healthcheck.strips.MIN_CELLS` cells each, checks show their
stats without strips (1,000 checks with full histories: about 0.5 MB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined, Template

from .checks import CheckResult, HealthReport
from .history import Snapshot, Trend
from .page_assets import ASSET_VERSION
from .redact import redact, redact_value
from .strips import (
    MIN_SLOTS,
    Scale,
    TrendView,
    clock_time,
    format_duration,
    page_scale,
    trend_view,
    utc,
)

#: The banner's headline for each status.
HEADLINES = {"pass": "Healthy", "warn": "Degraded", "fail": "Unhealthy"}
#: Sent with the page: it runs nothing and loads only its stylesheet and
#: icon, from the app's own origin, and no other site may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)


@cache
def _page() -> Template:
    """The page's template, compiled on first use, not at import: for
    start-up cost (issue 20), as most apps never show the page."""
    environment = Environment(autoescape=True, undefined=StrictUndefined)
    return environment.from_string(
        files(__package__).joinpath("status.html").read_text("utf-8"),
        globals={"asset_version": ASSET_VERSION},
    )


def format_observed(result: CheckResult) -> str | None:
    """``30.8 %``: the check's observed value and unit, or None; redacted,
    as a check may observe a connection string."""
    if result.observed_value is None:
        return None
    unit = f" {result.observed_unit}" if result.observed_unit else ""
    return f"{redact_value(result.observed_value)}{unit}"


def _row(
    result: CheckResult, report: HealthReport, trend: TrendView | None
) -> dict[str, Any]:
    moment = utc(result.started_at or report.started_at)
    return {
        "name": result.name,
        "status": result.status,
        "duration": format_duration(result.duration),
        "time": moment.strftime("%H:%M:%S UTC"),
        "iso": moment.isoformat(timespec="seconds"),
        "error": None if result.error is None else redact(result.error),
        "observed": format_observed(result),
        "trend": trend,
    }


def render_status_page(
    report: HealthReport,
    *,
    details: bool,
    refresh: int,
    title: str | None = None,
    description: str | None = None,
    version: str | None = None,
    release: str | None = None,
    history: Snapshot | None = None,
    assets: str = "",
    sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The page for ``report``: a banner, and a row per check with details.

    :param details: without them only the banner shows, as the envelope
        shows only ``success`` or ``failure``.
    :param refresh: seconds between reloads; 0 for none.
    :param history: the recent past to show: the strip of the overall
        status if it has one, and each check's trend under its row (with
        details only; it need not hold any check without them).
    :param assets: the URL under which :data:`ASSETS` are served (the main
        URL, with the app's script root), without a trailing slash.
    :param sections: ``(name, text)`` of each section, listed under the checks.
    """
    checked = utc(report.started_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    summary = f"Status: {report.status} · checked {checked}"
    if title:
        summary = f"{title} · {summary}"
    if details:
        failing = sum(result.status != "pass" for result in report.checks)
        count = len(report.checks)
        summary += f" · {count} check{'s' if count != 1 else ''}"
        if failing:
            summary += f", {failing} not passing"
    shown = report.checks if details else ()
    trends: list[Trend | None] = [None] * len(shown)
    overall = None
    scale = Scale(MIN_SLOTS, 1, True, True)
    if history is not None:
        trends = [history.checks.get(result.name) for result in shown]
        scale = page_scale(history.overall, trends)
        overall = trend_view(
            history.overall,
            history.now,
            scale.slots,
            durations=False,
            factor=scale.factor,
            titles=scale.titles,
        )
    now = history.now if history is not None else 0.0
    rows = [
        _row(
            result,
            report,
            trend_view(
                trend,
                now,
                scale.slots,
                durations=True,
                factor=scale.factor,
                titles=scale.titles,
                drawn=scale.checks_drawn,
            ),
        )
        for result, trend in zip(shown, trends, strict=True)
    ]
    return _page().render(
        assets=assets,
        title=title,
        headline=HEADLINES[report.status],
        css=report.status,
        summary=summary,
        description=description,
        overall=overall,
        started=clock_time(history.started_at, history.now) if history else None,
        slots=scale.slots,
        rows=rows,
        sections=sections,
        messages=[],
        hidden=not details,
        refresh=refresh,
        version=version,
        release=release,
    )


def render_error_page(
    code: int,
    errors: Mapping[str, str],
    *,
    title: str | None = None,
    assets: str = "",
) -> str:
    """A page for a request the view refused, such as an unknown check."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    return _page().render(
        assets=assets,
        title=title,
        headline=phrase,
        css="other",
        summary=f"HTTP {code}",
        description=None,
        overall=None,
        started=None,
        slots=MIN_SLOTS,
        rows=[],
        messages=list(errors.values()),
        hidden=False,
        refresh=0,
        version=None,
        release=None,
    )
