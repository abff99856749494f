"""``flask health``: run the checks once, for Docker ``HEALTHCHECK`` and
Kubernetes exec probes, and for people at a terminal.

Exit status 0 for pass or warn (a warn still serves traffic), 1 for fail
and 2 for a configuration error or a bad option, so a probe can tell "the
service is down" from "the probe is set up wrong".

The command is added to ``app.cli`` by ``init_app``, and only there: an
app without the extension has no ``health`` command. A
``ConfigurationError`` raised while the app is created (by ``init_app``)
leaves Flask no app to find the command in: ``flask`` then prints its
traceback and exits 1.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo

from . import formats
from .checks import CheckResult, HealthReport
from .errors import ConfigurationError
from .redact import redact_line
from .state import EXTENSION_KEY, get_state
from .status_page import format_observed
from .strips import format_duration

#: Exit statuses.
EXIT_PASS, EXIT_FAIL, EXIT_CONFIGURATION = 0, 1, 2

_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red"}


@click.command("health")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Run only the checks with this tag (repeatable: any of them).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the application/health+json document, with details.",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also show observed values and tags, and, unless the app sets up"
    " logging itself, the log lines of failing checks (tracebacks included).",
)
@click.pass_context
def health_command(
    ctx: click.Context, tags: tuple[str, ...], as_json: bool, verbose: bool
) -> None:
    """Run the health checks once and report.

    Exits 0 when healthy (pass or warn), 1 when a check fails, 2 when the
    health configuration is wrong.
    """
    try:
        app = _load_app(ctx)
        if EXTENSION_KEY not in app.extensions:
            click.echo(
                f"Error: the app {app.name!r} does not use flask-healthcheck:"
                " create a HealthCheck(app) or call init_app(app) in it.",
                err=True,
            )
            ctx.exit(EXIT_CONFIGURATION)
        with app.app_context(), _log_only_if(verbose):
            state = get_state(app)
            state.checks()  # a configuration error is not a usage error
            try:
                state.check_tags(tags)
            except ConfigurationError as e:
                raise click.UsageError(str(e)) from None
            report = state.run(
                state.select(tags=tags or None), fresh=True, deliver=True
            )
    except ConfigurationError as e:
        click.echo(
            f"Error: the health configuration is wrong: {redact_line(str(e))}",
            err=True,
        )
        ctx.exit(EXIT_CONFIGURATION)
    if as_json:
        context = formats.RenderContext(
            details=True,
            settings=state.settings,
            component_types=state.component_types(),
        )
        click.echo(json.dumps(formats.health_document(report, context), indent=2))
    else:
        click.echo(table(report, verbose=verbose))
    ctx.exit(EXIT_PASS if report.healthy else EXIT_FAIL)


@contextmanager
def _log_only_if(verbose: bool) -> Iterator[None]:
    """With no logging set up, Python prints warnings with their tracebacks
    on stderr: next to the table, which says why each check failed, that
    is noise in a Docker or Kubernetes probe's output. Keep it for
    ``--verbose``; an app that sets up logging keeps its own."""
    logger = logging.getLogger("flask_healthcheck")
    quiet = not verbose and not logger.hasHandlers()
    handler = logging.NullHandler()
    if quiet:
        logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _load_app(ctx: click.Context) -> Flask:
    """The current app (``flask health``), or the one the ``ScriptInfo``
    loads (the command added to a click group of one's own)."""
    if current_app:
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    return ctx.ensure_object(ScriptInfo).load_app()


def _cells(result: CheckResult, verbose: bool) -> list[str]:
    cells = [
        redact_line(result.name),
        result.status,
        format_duration(result.duration),
        redact_line(result.error or ""),
    ]
    if verbose:
        cells[3:3] = [
            redact_line(format_observed(result) or ""),
            redact_line(",".join(sorted(result.tags))),
            "yes" if result.critical else "no",
        ]
    return cells


def table(report: HealthReport, *, verbose: bool = False) -> str:
    """Aligned columns, the status coloured (click strips the colour when
    stdout is not a terminal), and a last line with the overall status."""
    header = ["CHECK", "STATUS", "DURATION", "ERROR"]
    if verbose:
        header[3:3] = ["OBSERVED", "TAGS", "CRITICAL"]
    rows: list[Sequence[str]] = [header]
    rows += [_cells(result, verbose) for result in report.checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {header.index("DURATION")}
    widths[-1] = 0  # the last column needs no padding
    lines = []
    for number, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            text = cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            if i == 1 and number > 0:
                # Bold only what needs attention; pass stays plain green.
                bold = True if cell != "pass" else None
                text = click.style(text, fg=_COLOURS[cell], bold=bold)
            elif number == 0:
                text = click.style(text, bold=True)
            cells.append(text)
        lines.append("  ".join(cells).rstrip())
    overall = click.style(report.status, fg=_COLOURS[report.status], bold=True)
    count = len(report.checks)
    lines.append(f"\nHealth: {overall} ({count} check{'s' if count != 1 else ''})")
    return "\n".join(lines)
