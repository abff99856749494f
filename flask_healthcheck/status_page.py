"""The HTML status page: one self-contained document for people.

Inline CSS, no scripts, no external assets, so it renders the same behind
any proxy or content security policy and on a phone. Rendered with a Jinja
environment of its own with autoescaping on: check names, errors and the
service description come from code and exceptions, and every one of them
is escaped. The app's own templates and loaders are not involved.

With a :class:`~flask_healthcheck.history.Snapshot` the page also shows the
recent past: a strip of cells, one per run, coloured by status, with the
run's time on hover; the uptime and the number of transitions over the
window; since when the current status holds; and, per check, the duration
trend as a sparkline. Strips and sparklines are inline SVG, so the page
stays one document that fits :data:`CONTENT_SECURITY_POLICY`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined

from .checks import CheckResult, HealthReport
from .history import Snapshot, Trend
from .redact import redact, redact_value

#: The banner's headline for each status.
HEADLINES = {"pass": "Healthy", "warn": "Degraded", "fail": "Unhealthy"}
#: The banner's colour for each status (and ``other`` for refusals).
COLOURS = {"pass": "#1a7f37", "warn": "#e3a008", "fail": "#cf222e", "other": "#59636e"}
#: Sent with the page: it loads nothing and runs nothing, so a browser may
#: refuse everything but its inline style and its ``data:`` icon.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: A strip is never narrower than this many runs, so that the first runs
#: of a process show as cells, not as bars across the page.
MIN_SLOTS = 60
#: Seconds at the top of a sparkline at the least.
SPARK_FLOOR = 0.001
#: How the strip and the stats name each status.
_PARTICIPLES = {"pass": "passing", "warn": "warning", "fail": "failing"}

_TEMPLATE = """\
{%- macro strip(trend) -%}
<svg class="strip" viewBox="0 0 {{ slots }} 1" preserveAspectRatio="none" \
role="img" aria-label="{{ trend.label }}">
<rect class="track" width="{{ slots }}" height="1"/>
{%- for cell in trend.cells %}
<rect class="{{ cell.css }}" x="{{ cell.x }}" width=".84" height="1">\
<title>{{ cell.title }}</title></rect>
{%- endfor %}
</svg>
{%- endmacro -%}
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{%- if refresh %}
<meta http-equiv="refresh" content="{{ refresh }}">
{%- endif %}
<meta name="robots" content="noindex">
<link rel="icon" href="{{ icon }}">
<title>{{ headline }}{% if title %} · {{ title }}{% endif %}</title>
<style>
:root {
  color-scheme: light dark;
  --bg: #f6f8fa; --fg: #1f2328; --muted: #59636e; --card: #ffffff;
  --line: #d1d9e0;
  {%- for name, colour in colours.items() %} --{{ name }}: {{ colour }};{% endfor %}
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --card: #151b23;
    --line: #3d444d;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
main { max-width: 56rem; margin: 0 auto; padding: 1rem; }
.banner { border-radius: 0.75rem; padding: 1.25rem 1.5rem; color: #ffffff; }
.banner h1 { margin: 0; font-size: 1.75rem; line-height: 1.2; }
.banner p { margin: 0.25rem 0 0; }
.banner.pass, .badge.pass { background: var(--pass); }
.banner.warn, .badge.warn { background: var(--warn); color: #1f2328; }
.banner.fail, .badge.fail { background: var(--fail); }
.banner.other { background: var(--other); }
.description { color: var(--muted); margin: 0.75rem 0 0; }
table {
  width: 100%; margin-top: 1rem; border-collapse: collapse;
  background: var(--card); border: 1px solid var(--line); border-radius: 0.75rem;
}
th, td { padding: 0.6rem 0.9rem; text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 0.875rem; }
tbody tr { border-top: 1px solid var(--line); }
tr.pass td:first-child { box-shadow: inset 4px 0 var(--pass); }
tr.warn td:first-child { box-shadow: inset 4px 0 var(--warn); }
tr.fail td:first-child { box-shadow: inset 4px 0 var(--fail); }
.name { font-weight: 600; overflow-wrap: anywhere; }
.error, .observed {
  display: block; font-weight: 400; font-size: 0.875rem; overflow-wrap: anywhere;
}
.error { color: var(--fail); }
tr.warn .error { color: #9a6700; }
.observed { color: var(--muted); }
.badge {
  display: inline-block; min-width: 3.5rem; padding: 0.1rem 0.5rem;
  border-radius: 1rem; color: #ffffff; font-size: 0.875rem; text-align: center;
}
.num { white-space: nowrap; }
footer { color: var(--muted); font-size: 0.875rem; margin-top: 1rem; }
.history {
  margin-top: 1rem; padding: 0.75rem 0.9rem; background: var(--card);
  border: 1px solid var(--line); border-radius: 0.75rem;
}
.history h2 { margin: 0 0 0.5rem; font-size: 0.875rem; color: var(--muted); }
svg.strip, svg.spark { display: block; width: 100%; }
svg.strip { height: 1.25rem; }
.history svg.strip { height: 2rem; }
svg.spark { height: 1.5rem; margin-top: 0.25rem; }
.strip .track { fill: var(--line); opacity: 0.4; }
.strip .p { fill: var(--pass); }
.strip .w { fill: var(--warn); }
.strip .f { fill: var(--fail); }
.spark polyline {
  fill: none; stroke: var(--muted); stroke-width: 1.5; stroke-linejoin: round;
}
.stats {
  margin: 0.25rem 0 0; color: var(--muted); font-size: 0.875rem;
  overflow-wrap: anywhere;
}
tbody tr.trend { border-top: 0; }
tr.trend td { padding-top: 0; }
tr.trend.pass td:first-child { box-shadow: inset 4px 0 var(--pass); }
tr.trend.warn td:first-child { box-shadow: inset 4px 0 var(--warn); }
tr.trend.fail td:first-child { box-shadow: inset 4px 0 var(--fail); }
@media (max-width: 36rem) {
  thead { display: none; }
  tbody tr { display: block; padding: 0.5rem 0; }
  td {
    display: flex; justify-content: space-between; gap: 1rem;
    padding: 0.2rem 0.9rem;
  }
  td::before { content: attr(data-label); color: var(--muted); }
  td.name, tr.trend td { display: block; }
  td.name::before { content: none; }
  tbody tr.trend { padding-top: 0; }
}
</style>
</head>
<body>
<main>
<header class="banner {{ css }}" role="status">
<h1>{{ headline }}</h1>
<p>{{ summary }}</p>
</header>
{%- if description %}
<p class="description">{{ description }}</p>
{%- endif %}
{%- if overall %}
<section class="history overall" aria-label="Recent runs">
<h2>Recent runs · this process, since {{ started }}</h2>
{{ strip(overall) }}
<p class="stats">{{ overall.stats }}</p>
</section>
{%- endif %}
{%- if rows %}
<table>
<thead><tr><th>Check</th><th>Status</th><th>Duration</th><th>Last run</th></tr></thead>
<tbody>
{%- for row in rows %}
<tr class="check {{ row.status }}">
<td class="name">{{ row.name }}
{%- if row.observed %}
<span class="observed">observed: {{ row.observed }}</span>
{%- endif %}
{%- if row.error %}
<span class="error">{{ row.error }}</span>
{%- endif %}</td>
<td data-label="Status">
<span class="badge {{ row.status }}">{{ row.status }}</span></td>
<td data-label="Duration" class="num">{{ row.duration }}</td>
<td data-label="Last run" class="num">
<time datetime="{{ row.iso }}">{{ row.time }}</time></td>
</tr>
{%- if row.trend %}
<tr class="trend {{ row.status }}">
<td colspan="4">
{{ strip(row.trend) }}
{%- if row.trend.spark %}
<svg class="spark" viewBox="0 0 {{ slots }} 30" preserveAspectRatio="none" \
role="img" aria-label="{{ row.trend.spark_label }}">
<title>{{ row.trend.spark_label }}</title>
<polyline points="{{ row.trend.spark }}" vector-effect="non-scaling-stroke"/>
</svg>
{%- endif %}
<p class="stats">{{ row.trend.stats }}</p>
</td>
</tr>
{%- endif %}
{%- endfor %}
</tbody>
</table>
{%- endif %}
{%- for message in messages %}
<p class="description">{{ message }}</p>
{%- endfor %}
<footer>
{%- if hidden %}Per-check details are hidden. {% endif %}
{%- if refresh %}This page reloads every {{ refresh }} s.{% endif %}
{%- if version %} Version {{ version }}.{% endif %}
{%- if release %} Release {{ release }}.{% endif %}
</footer>
</main>
</body>
</html>
"""

_environment = Environment(autoescape=True, undefined=StrictUndefined)
_page = _environment.from_string(_TEMPLATE, globals={"colours": COLOURS})


def _icon(css: str) -> str:
    """A dot of the status colour as a ``data:`` URL: the browser tab shows
    the status, and the browser asks the app for no ``/favicon.ico``."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
        f"<circle cx='8' cy='8' r='7' fill='{COLOURS[css]}'/></svg>"
    )
    return "data:image/svg+xml," + quote(svg, safe=":/='")


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


def _trend_view(
    trend: Trend | None, now: float, slots: int, *, durations: bool
) -> _TrendView | None:
    """The strip of ``trend``, its cells right-aligned on ``slots`` slots
    (the newest last), its stats and, with ``durations``, its sparkline
    drawn on the same slots. None for a series without entries."""
    if trend is None or not trend.entries or trend.since is None:
        return None
    entries = trend.entries
    offset = slots - len(entries)
    cells = []
    for i, entry in enumerate(entries):
        title = f"{_utc(entry.at).strftime('%H:%M:%S UTC')} · {entry.status}"
        if durations:
            title += f" · {format_duration(entry.duration)}"
        cells.append(_Cell(entry.status[0], offset + i, title))
    counts = {s: sum(e.status == s for e in entries) for s in _PARTICIPLES}
    runs = _plural(len(entries), "run")
    stats = [
        f"{format_uptime(trend.uptime or 0.0)} up"
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
    if not durations or len(entries) < 2:
        return view
    # A viewBox 30 high, the line kept 2 from the edges; drawn to at least
    # 1 ms, so that a check of microseconds draws no noise as spikes.
    longest = max(entry.duration for entry in entries)
    scale = 26 / max(longest, SPARK_FLOOR)
    points = " ".join(
        f"{offset + i + 0.42:g},{28 - entry.duration * scale:.1f}"
        for i, entry in enumerate(entries)
    )
    return replace(
        view,
        spark=points,
        spark_label=f"Duration of the last {runs}: longest"
        f" {format_duration(longest)}, latest {format_duration(entries[-1].duration)}",
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
) -> str:
    """The page for ``report``: a banner, and a row per check with details.

    :param details: without them only the banner shows, as the envelope
        shows only ``success`` or ``failure``.
    :param refresh: seconds between reloads; 0 for none.
    :param history: the recent past to show: the strip of the overall
        status if it has one, and each check's trend under its row (with
        details only; it need not hold any check without them).
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
    slots = MIN_SLOTS
    if history is not None:
        trends = [history.checks.get(result.name) for result in shown]
        # One scale for every strip on the page, so that runs line up.
        for trend in [*trends, history.overall]:
            if trend is not None:
                slots = max(slots, len(trend.entries))
        overall = _trend_view(history.overall, history.now, slots, durations=False)
    now = history.now if history is not None else 0.0
    rows = [
        _row(result, report, _trend_view(trend, now, slots, durations=True))
        for result, trend in zip(shown, trends, strict=True)
    ]
    return _page.render(
        title=title,
        headline=HEADLINES[report.status],
        css=report.status,
        icon=_icon(report.status),
        summary=summary,
        description=description,
        overall=overall,
        started=_clock_time(history.started_at, history.now) if history else None,
        slots=slots,
        rows=rows,
        messages=[],
        hidden=not details,
        refresh=refresh,
        version=version,
        release=release,
    )


def render_error_page(
    code: int, errors: Mapping[str, str], *, title: str | None = None
) -> str:
    """A page for a request the view refused, such as an unknown check."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    return _page.render(
        title=title,
        headline=phrase,
        css="other",
        icon=_icon("other"),
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
