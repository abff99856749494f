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
recent past as inline SVG: a strip of cells, one per run, coloured by
status, with the run's time on hover; the uptime and the transitions over
the window; since when the current status holds; and, per check, the
duration trend as a sparkline. It stays small with many checks: a page
draws :data:`CELL_BUDGET` cells at the most (a cell then covers several
runs, coloured by the worst), hover titles only on small pages, and with
too many checks for :data:`MIN_CELLS` cells each, checks show their stats
without strips (1,000 checks with full histories: about 0.5 MB).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from http import HTTPStatus
from importlib.resources import files
from operator import itemgetter
from typing import Any

from jinja2 import Environment, StrictUndefined

from .checks import CheckResult, HealthReport
from .history import Entry, Snapshot, Trend
from .page_assets import ASSET_VERSION
from .redact import redact, redact_value

#: The banner's headline for each status.
HEADLINES = {"pass": "Healthy", "warn": "Degraded", "fail": "Unhealthy"}
#: Sent with the page: it runs nothing and loads only its stylesheet and
#: icon, from the app's own origin, and no other site may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)
#: A strip is never narrower than this many runs, so that the first runs
#: of a process show as cells, not as bars across the page.
MIN_SLOTS = 60
#: Strip cells a page draws at the most, all strips together.
CELL_BUDGET = 6000
#: Fewer cells than this per strip, and the checks' strips are left out
#: (their stats lines stay): the page has too many checks for them.
MIN_CELLS = 20
#: Cells a page may draw with a hover title each at the most.
TITLE_BUDGET = 2000
#: Seconds at the top of a sparkline at the least.
SPARK_FLOOR = 0.001
#: How the strip and the stats name each status.
_PARTICIPLES = {"pass": "passing", "warn": "warning", "fail": "failing"}


_environment = Environment(autoescape=True, undefined=StrictUndefined)
_page = _environment.from_string(
    files(__package__).joinpath("status.html").read_text("utf-8"),
    globals={"asset_version": ASSET_VERSION},
)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)


def format_duration(seconds: float) -> str:
    """``12.3 ms`` below a second, ``2.05 s`` above: readable at a glance."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def format_observed(result: CheckResult) -> str | None:
    """``30.8 %``: the check's observed value and unit, or None; redacted,
    as a check may observe a connection string."""
    if result.observed_value is None:
        return None
    unit = f" {result.observed_unit}" if result.observed_unit else ""
    return f"{redact_value(result.observed_value)}{unit}"


def format_period(seconds: float) -> str:
    """``45 s``, ``4 min``, ``2 h 5 min``, ``3 d 4 h``: how long, at a
    glance (at least ``1 s``, rounded down)."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def format_uptime(share: float) -> str:
    """``99.7 %``, rounded down: a window with a failure never reads 100 %."""
    # The epsilon keeps 0.7 (699.999... per mille in floating point) at 70 %.
    return f"{math.floor(share * 1000 + 1e-9) / 10:g} %"


def _clock_time(timestamp: float, now: float) -> str:
    """``12:03 UTC``, with the date if it is not within the last 12 hours."""
    moment = _utc(timestamp)
    if now - timestamp > 12 * 3600:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _Cell:
    """One run on a strip."""

    #: ``p``, ``w`` or ``f``: the CSS class of its colour.
    css: str
    #: Its slot on the strip, from the left.
    x: int
    #: What hovering it says: ``12:03:10 UTC · fail · 3.2 ms``.
    title: str


@dataclass(frozen=True)
class _TrendView:
    """What the page shows of one series."""

    #: The strip's text for screen readers: how many runs had each status.
    label: str
    cells: list[_Cell]
    #: ``99.7 % up (...) · 2 transitions · passing for 52 min, since 12:03 UTC``.
    stats: str
    #: The sparkline's points, or None (no durations, or a single run).
    spark: str | None = None
    spark_label: str = ""


_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


def _groups(entries: tuple[Entry, ...], factor: int) -> list[tuple[Entry, ...]]:
    """``entries`` cut into groups of ``factor`` runs, counted from the
    newest, so that the strips of one page line up on their right edge."""
    ends = range(len(entries), 0, -factor)
    return [entries[max(0, end - factor) : end] for end in reversed(ends)]


def _trend_view(
    trend: Trend | None,
    now: float,
    slots: int,
    *,
    durations: bool,
    factor: int = 1,
    titles: bool = True,
    drawn: bool = True,
) -> _TrendView | None:
    """The strip of ``trend``, its cells right-aligned on ``slots`` slots
    (the newest last), its stats and, with ``durations``, its sparkline
    drawn on the same slots. None for a series without entries.

    :param factor: runs per cell; a cell of several is coloured by the
        worst status among them, its sparkline point the longest duration.
    :param titles: whether each cell (then one run) says its run on hover.
    :param drawn: False for the stats only, without strip or sparkline.
    """
    if trend is None or not trend.entries or trend.since is None:
        return None
    entries = trend.entries
    groups = _groups(entries, factor) if drawn else []
    offset = slots - len(groups)
    cells = []
    for i, group in enumerate(groups):
        status = max((entry.status for entry in group), key=_SEVERITY.__getitem__)
        title = ""
        if titles and factor == 1:
            entry = group[0]
            title = f"{_utc(entry.at).strftime('%H:%M:%S UTC')} · {entry.status}"
            if durations:
                title += f" · {format_duration(entry.duration)}"
        cells.append(_Cell(status[0], offset + i, title))
    # One pass in C over up to 360 entries: with 1,000 checks, counting in
    # Python took three quarters of the page's time.
    tally = Counter(map(itemgetter(1), entries))
    counts = {s: tally[s] for s in _PARTICIPLES}
    runs = _plural(len(entries), "run")
    stats = [
        f"{format_uptime((len(entries) - counts['fail']) / len(entries))} up"
        f" ({len(entries) - counts['fail']} of {runs} in the last"
        f" {format_period(now - entries[0].at)})",
        _plural(trend.transitions, "transition"),
        f"{_PARTICIPLES[entries[-1].status]} for {format_period(now - trend.since)},"
        f" since {_clock_time(trend.since, now)}",
    ]
    view = _TrendView(
        label=f"Last {runs}: "
        + ", ".join(f"{counts[s]} {_PARTICIPLES[s]}" for s in _PARTICIPLES),
        cells=cells,
        stats=" · ".join(stats),
    )
    if not durations or len(groups) < 2:
        return view
    # A viewBox 30 high, the line kept 2 from the edges; drawn to at least
    # 1 ms, so that a check of microseconds draws no noise as spikes.
    peaks = [max(entry.duration for entry in group) for group in groups]
    longest = max(peaks)
    scale = 26 / max(longest, SPARK_FLOOR)
    points = " ".join(
        f"{offset + i + 0.42:g},{28 - peak * scale:.1f}" for i, peak in enumerate(peaks)
    )
    return replace(
        view,
        spark=points,
        spark_label=f"Duration of the last {runs}: longest"
        f" {format_duration(longest)}, latest {format_duration(entries[-1].duration)}",
    )


@dataclass(frozen=True)
class _Scale:
    """How a page draws its strips, one scale for all so that runs line up."""

    #: Slots across a strip.
    slots: int
    #: Runs per cell.
    factor: int
    #: Whether cells carry hover titles.
    titles: bool
    #: Whether the checks' strips are drawn (else only their stats).
    checks_drawn: bool


def _scale(overall: Trend | None, checks: list[Trend | None]) -> _Scale:
    """Fit the page's strips in :data:`CELL_BUDGET` cells."""
    with_entries = [trend for trend in checks if trend is not None and trend.entries]
    checks_drawn = CELL_BUDGET // (1 + len(with_entries)) >= MIN_CELLS
    drawn = [*with_entries] if checks_drawn else []
    if overall is not None and overall.entries:
        drawn.append(overall)
    cap = CELL_BUDGET // max(1, len(drawn))
    longest = max((len(trend.entries) for trend in drawn), default=0)
    factor = max(1, math.ceil(longest / cap))
    slots = math.ceil(longest / factor)
    cells = sum(math.ceil(len(trend.entries) / factor) for trend in drawn)
    return _Scale(
        slots=max(MIN_SLOTS, slots) if factor == 1 else slots,
        factor=factor,
        titles=factor == 1 and cells <= TITLE_BUDGET,
        checks_drawn=checks_drawn,
    )


def _row(
    result: CheckResult, report: HealthReport, trend: _TrendView | None
) -> dict[str, Any]:
    moment = _utc(result.started_at or report.started_at)
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
    checked = _utc(report.started_at).strftime("%Y-%m-%d %H:%M:%S UTC")
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
    scale = _Scale(MIN_SLOTS, 1, True, True)
    if history is not None:
        trends = [history.checks.get(result.name) for result in shown]
        scale = _scale(history.overall, trends)
        overall = _trend_view(
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
            _trend_view(
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
    return _page.render(
        assets=assets,
        title=title,
        headline=HEADLINES[report.status],
        css=report.status,
        summary=summary,
        description=description,
        overall=overall,
        started=_clock_time(history.started_at, history.now) if history else None,
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
    return _page.render(
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
