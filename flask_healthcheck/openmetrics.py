"""``application/openmetrics-text``: the health gauges, on the health URLs.

A Prometheus (or any OpenMetrics scraper) pointed at a health URL reads
this process's health as gauges, without prometheus_client: the gauges of
:mod:`flask_healthcheck.gauges`, the names contrib.prometheus exports.
Scraping a health URL *runs* its checks, as any probe does (reusing a
result younger than ``HEALTHCHECK_CACHE_TTL``, or the refresher's latest
run); contrib.prometheus's ``/metrics`` never runs them.

The text follows OpenMetrics 1.0: ``# HELP``, ``# TYPE`` and, for a name
with a unit suffix, ``# UNIT`` before each family's samples, label values
escaped, ``# EOF`` last, one series per check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from .checks import HealthReport
from .formats import OPENMETRICS_CONTENT_TYPE
from .gauges import (
    CHECK_GAUGES,
    HEALTH_STATUS,
    STATUS_VALUES,
    GaugeDefinition,
    check_values,
)
from .render_context import RenderContext

#: The full ``Content-Type``: scrapers pick their parser by ``version``.
CONTENT_TYPE = OPENMETRICS_CONTENT_TYPE

#: The last line of every exposition.
EOF = "# EOF\n"

#: Lone surrogates: a Python string may hold them, UTF-8 can't.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def escape(text: str) -> str:
    """A label value or help text as OpenMetrics writes it: backslash,
    double quote and newline escaped; lone surrogates, which UTF-8 can't
    encode, replaced by U+FFFD. Everything else is allowed as it is."""
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return _SURROGATES.sub("\ufffd", text)


def number(value: float) -> str:
    """A sample value: ``1.0``, ``0.25``, ``NaN``, ``+Inf``."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def family(
    definition: GaugeDefinition, samples: Iterable[tuple[str, float]]
) -> list[str]:
    """The lines of one metric family: its metadata, then a sample per
    ``(labels, value)``, ``labels`` already written (``check="db"``)."""
    name = definition.name
    lines = [f"# HELP {name} {escape(definition.help)}", f"# TYPE {name} gauge"]
    if definition.unit:
        lines.append(f"# UNIT {name} {definition.unit}")
    for labels, value in samples:
        series = f"{name}{{{labels}}}" if labels else name
        lines.append(f"{series} {number(value)}")
    return lines


def exposition(report: HealthReport, *, details: bool) -> str:
    """The report as OpenMetrics text.

    ``health_status`` always; with details, every check's gauges, labelled
    ``check``. The check name is shown as every format shows it (it is
    the app's identifier, not redacted), escaped. A name that escapes
    like an earlier one (two differing only by lone surrogates) is left
    out: a series must not repeat.
    """
    lines = family(HEALTH_STATUS, [("", STATUS_VALUES[report.status])])
    if details:
        columns: list[list[tuple[str, float]]] = [[] for _ in CHECK_GAUGES]
        seen: set[str] = set()
        for result in report.checks:
            label = f'check="{escape(result.name)}"'
            if label in seen:
                continue
            seen.add(label)
            for column, value in zip(
                columns, check_values(result, report), strict=True
            ):
                column.append((label, value))
        for definition, samples in zip(CHECK_GAUGES, columns, strict=True):
            lines.extend(family(definition, samples))
    return "\n".join(lines) + "\n" + EOF


def render(report: HealthReport, context: RenderContext) -> str:
    """The ``Format`` renderer: :func:`exposition` by the details rule."""
    return exposition(report, details=context.details)


def render_error(code: int, errors: Mapping[str, str], context: RenderContext) -> str:
    """A refused request (404 unknown check, 400, 405): an empty, valid
    exposition. No check ran, so no gauge has a value to report; a
    ``health_status 0`` would claim the app unhealthy because of a typo in
    a URL. A scraper marks the target down on the 4xx status alone
    (``up == 0``), and a parser reading the body still gets valid text.
    Errors are not shown: metrics carry numbers, the envelope says why."""
    return EOF
