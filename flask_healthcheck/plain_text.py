"""``text/plain``: the report for a terminal, a shell script or a log.

The first line is the overall status, ``pass``, ``warn`` or ``fail``, so
``curl -s -H 'Accept: text/plain' .../health | head -1`` is all a script
needs. With details, a line per check follows (``name: status, duration``
and the redacted error), then, after an empty line, a line per section
(``name: value``, the value as one line of JSON). Every line is one line:
newlines and other control characters in names, errors and values are
shown as escapes, so nothing a dependency says can forge a line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .checks import CheckResult, HealthReport
from .redact import MAX_LENGTH, escape_controls, redact_line
from .render_context import RenderContext
from .strips import format_duration


def check_line(result: CheckResult) -> str:
    """``database: fail, 2.00 s, TimeoutError: timed out``."""
    line = (
        f"{redact_line(result.name)}: {result.status},"
        f" {format_duration(result.duration)}"
    )
    if result.error:
        line += f", {redact_line(result.error)}"
    return line


def section_line(name: str, value: Any) -> str:
    """``build: {"commit": "4f2a9c1"}``: the value (redacted already) as
    one line of JSON, a string as it is."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{redact_line(name)}: {escape_controls(text)}"


def plain_text(report: HealthReport, context: RenderContext) -> str:
    """The status, then with details a line per check and per section."""
    lines: list[str] = [report.status]
    if context.details:
        lines.extend(check_line(result) for result in report.checks)
        if context.sections:
            lines.append("")
            lines.extend(
                section_line(name, value) for name, value in context.sections.items()
            )
    return "\n".join(lines) + "\n"


def plain_text_error(
    code: int, errors: Mapping[str, str], context: RenderContext
) -> str:
    """``fail``, then what was wrong with the request, a line each. The
    view redacted the messages already, for every format."""
    lines = ["fail"]
    lines.extend(
        f"{escape_controls(key)}: {escape_controls(message[: MAX_LENGTH * 4])}"
        for key, message in errors.items()
    )
    return "\n".join(lines) + "\n"
