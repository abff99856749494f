"""The HTML status page: one self-contained document for people.

Inline CSS, no scripts, no external assets, so it renders the same behind
any proxy or content security policy and on a phone. Rendered with a Jinja
environment of its own with autoescaping on: check names, errors and the
service description come from code and exceptions, and every one of them
is escaped. The app's own templates and loaders are not involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, StrictUndefined

from .checks import CheckResult, HealthReport
from .redact import redact, redact_value

#: The banner's headline for each status.
HEADLINES = {"pass": "Healthy", "warn": "Degraded", "fail": "Unhealthy"}
#: The banner's colour for each status (and ``other`` for refusals).
COLOURS = {"pass": "#1a7f37", "warn": "#e3a008", "fail": "#cf222e", "other": "#59636e"}

_TEMPLATE = """\
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
@media (max-width: 36rem) {
  thead { display: none; }
  tbody tr { display: block; padding: 0.5rem 0; }
  td {
    display: flex; justify-content: space-between; gap: 1rem;
    padding: 0.2rem 0.9rem;
  }
  td::before { content: attr(data-label); color: var(--muted); }
  td.name { display: block; }
  td.name::before { content: none; }
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


def _row(result: CheckResult, report: HealthReport) -> dict[str, Any]:
    moment = _utc(result.started_at or report.started_at)
    return {
        "name": result.name,
        "status": result.status,
        "duration": format_duration(result.duration),
        "time": moment.strftime("%H:%M:%S UTC"),
        "iso": moment.isoformat(timespec="seconds"),
        "error": None if result.error is None else redact(result.error),
        "observed": format_observed(result),
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
) -> str:
    """The page for ``report``: a banner, and a row per check with details.

    :param details: without them only the banner shows, as the envelope
        shows only ``success`` or ``failure``.
    :param refresh: seconds between reloads; 0 for none.
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
    return _page.render(
        title=title,
        headline=HEADLINES[report.status],
        css=report.status,
        icon=_icon(report.status),
        summary=summary,
        description=description,
        rows=[_row(result, report) for result in report.checks] if details else [],
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
        rows=[],
        messages=list(errors.values()),
        hidden=False,
        refresh=0,
        version=None,
        release=None,
    )
