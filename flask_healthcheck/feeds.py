"""RSS 2.0 and Atom 1.0 feeds of status changes, for feed readers and the
chat integrations built on them (django-health-check has these).

A feed has an entry per change of status found in the recent past (the
:class:`~flask_healthcheck.history.History` of this process): the overall
status's on the main URL and, with details, each check's (``db: pass →
fail``, with the check's redacted error while that status holds). Newest
first, :data:`MAX_ENTRIES` at the most. The current status is always in the
feed's title, and the change that began it is an entry even when it is older
than the window, so a reader sees where things stand after a quiet hour (a
check's too, unless it passes: a restart posts no entry per passing check).

An entry's id is derived from what identifies the change (the service id,
the endpoint's path, the series, the time and the new status), never from
the request's ``Host``: a reader polling every minute sees each change once.
The entry for a change keeps its id when older results leave the window and
the change can only be told as "the status since then".

Every text shown is cut to a bound, its control characters escaped
(``\\x1b``), characters XML 1.0 forbids replaced, and redacted; then
:mod:`~flask_healthcheck.feed_xml` writes it as RSS or Atom.

A refused request (404, 400, 405) is answered with a valid feed too, its
status code telling what happened: a feed reader shown anything else
reports "not a feed" and hides the reason. The feed has one entry naming
the reason, with the same id at every poll, so a chat integration that
posts it anyway posts it once.

The history is this process's: behind a pre-fork server each worker has
its own, so each tells the changes its own runs saw.
"""

from __future__ import annotations

import heapq
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice

from flask import has_request_context, request

from .checks import HealthReport, Status
from .config import Settings
from .feed_xml import Feed, Item, write_atom, write_rss
from .history import Snapshot, Trend
from .redact import ELLIPSIS, MAX_LENGTH, escape_controls, redact, truncate
from .render_context import RenderContext
from .series import NAMES

#: Entries in one feed at the most; the newest changes win.
MAX_ENTRIES = 50
#: Characters of a check or service name shown at the most.
MAX_NAME = 200
#: Names of failing checks listed in the entry of the overall status.
MAX_NAMES_LISTED = 10

#: What XML 1.0 forbids, once control characters are escaped: surrogates
#: (a lone one can't even be encoded) and the two non-characters.
_FORBIDDEN = re.compile("[\ud800-\udfff\ufffe\uffff]")
#: Namespace of the entry ids (``urn:uuid:`` of version 5).
_NAMESPACE = uuid.UUID("2f6b7f0e-4a2c-5d9e-9c41-6f1d3a8b0c57")


def _xml_text(text: str, limit: int) -> str:
    """``text`` cut roughly; control characters shown as escapes
    (``\\x00``: XML 1.0 can't carry them) and what else XML forbids
    replaced."""
    text = escape_controls(text[: limit * 4], keep_newlines=True)
    return _FORBIDDEN.sub("\ufffd", text)


def clean(text: str, limit: int = MAX_LENGTH) -> str:
    """``text`` fit for a feed (:func:`_xml_text`) before redaction, so
    that what redaction looks at is what the reader sees; then credentials
    blanked and the text cut to ``limit``."""
    return redact(_xml_text(text, limit), limit=limit)


def clean_redacted(text: str, limit: int = MAX_LENGTH) -> str:
    """:func:`clean` for text redacted already (a refusal's messages, by
    the view, for every format): fit for a feed and cut the same way."""
    text, cut = truncate(_xml_text(text, limit), limit)
    return text + ELLIPSIS if cut else text


@dataclass(frozen=True)
class Change:
    """One change of one series' status."""

    #: Unix time of the first result with the new status.
    at: float
    #: The check's name, or ``None`` for the overall status.
    check: str | None
    #: The status before; ``None`` when the window no longer shows it.
    before: Status | None
    after: Status


def series_changes(
    trend: Trend, check: str | None, *, quiet: bool = False
) -> Iterator[Change]:
    """The changes within ``trend``'s window, newest first, or else the
    beginning of its current status, unless ``quiet`` and that is a pass (a
    check that passes since the process began is news to no one: a restart
    must not post an entry per check). Lazy: the newest cost nothing more
    to find when a series has many."""
    if not trend.transitions:
        if trend.status is not None and trend.since is not None:
            if not (quiet and trend.status == "pass"):
                yield Change(trend.since, check, None, trend.status)
        return
    # The columns, not the entries: 1,000 checks hold 360,000 results.
    times, statuses, _ = trend.columns
    for i in range(len(statuses) - 1, 0, -1):
        if statuses[i - 1] != statuses[i]:
            yield Change(times[i], check, NAMES[statuses[i - 1]], NAMES[statuses[i]])


def changes(snapshot: Snapshot | None, *, details: bool) -> list[Change]:
    """The newest :data:`MAX_ENTRIES` changes, newest first: the overall
    status's and, with ``details``, each check's. The change that began the
    current overall status is always among them; a check's status only when
    it changed in the window or isn't passing."""
    if snapshot is None:
        return []
    series: list[Iterator[Change]] = []
    current = None
    if snapshot.overall is not None:
        current = next(series_changes(snapshot.overall, None), None)
        series.append(series_changes(snapshot.overall, None))
    if details:
        series.extend(
            series_changes(trend, name, quiet=True)
            for name, trend in snapshot.checks.items()
        )
    # At the same time, the overall status first (its run ends after the
    # checks' results).
    merged = heapq.merge(
        *series, key=lambda change: (change.at, change.check is None), reverse=True
    )
    newest = list(islice(merged, MAX_ENTRIES))
    if current is not None and current not in newest:
        newest[-1] = current
    return newest


def _locations() -> tuple[str, str]:
    """The endpoint's URL (the feed's without its query), and the key that
    identifies the endpoint in ids: the path with the script root, never
    the ``Host`` a client made up (the URL is escaped like any text)."""
    if not has_request_context():
        return "", ""
    return request.base_url, request.script_root + request.path


def _uuid(*parts: str) -> str:
    """A ``urn:uuid:`` (version 5) of ``parts``; a check's name may hold a
    lone surrogate, which UTF-8 can't encode as it is."""
    name = "\0".join(parts).encode("utf-8", "backslashreplace").decode("utf-8")
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"


def _name(settings: Settings) -> str:
    return clean(settings.service_id or "", MAX_NAME)


def _text_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def _item(
    change: Change, report: HealthReport, context: RenderContext, service: str, key: str
) -> Item:
    subject = (
        "Overall status" if change.check is None else clean(change.check, MAX_NAME)
    )
    when = _text_time(change.at)
    if change.before is None:
        title = f"{subject}: {change.after}"
        lines = [f"{subject}: {change.after} since {when}."]
    else:
        title = f"{subject}: {change.before} → {change.after}"
        lines = [f"{subject} went from {change.before} to {change.after} at {when}."]
    trend = _trend(context.history, change.check)
    if context.details and trend is not None and trend.since == change.at:
        lines.extend(_now(change, report))
    identity = _uuid(service, key, change.check or "", repr(change.at), change.after)
    return Item(identity, title, "\n".join(lines), change.at, change.after)


def _trend(history: Snapshot | None, check: str | None) -> Trend | None:
    if history is None:
        return None
    return history.overall if check is None else history.checks.get(check)


def _now(change: Change, report: HealthReport) -> list[str]:
    """What the report says about the status this change began, which still
    holds: the check's error, or the checks not passing. The history keeps
    no error text, so past changes have none."""
    if change.check is not None:
        for result in report.checks:
            if result.name == change.check and result.error:
                return [f"Error: {clean(result.error)}"]
        return []
    lines = []
    for status in ("fail", "warn"):
        names = [r.name for r in report.checks if r.status == status]
        if names:
            shown = ", ".join(clean(n, MAX_NAME) for n in names[:MAX_NAMES_LISTED])
            more = len(names) - MAX_NAMES_LISTED
            lines.append(
                f"Now {status}: {shown}" + (f" and {more} more" if more > 0 else "")
            )
    return lines


def _feed(report: HealthReport, context: RenderContext, fmt: str) -> Feed:
    link, key = _locations()
    service = _name(context.settings)
    history = context.history
    items = [
        _item(change, report, context, service, key)
        for change in changes(history, details=context.details)
    ]
    now = history.now if history is not None else report.started_at
    subtitle = (
        f"Changes of status of {clean(link) or 'the health endpoint'} in this"
        " process, newest first"
    )
    if history is not None:
        subtitle += (
            f" (the last {history.max_age / 60:g} min, {MAX_ENTRIES} entries"
            " at the most)"
        )
    subtitle += f". Now: {report.status}."
    return Feed(
        id=_uuid(service, key),
        title=f"{service or 'Health'}: {report.status}",
        subtitle=subtitle,
        link=clean(link),
        self_link=clean(f"{link}?format={fmt}" if link else ""),
        author=service or "flask-healthcheck",
        updated=items[0].at if items else now,
        items=items,
    )


def _error_feed(
    code: int, errors: Mapping[str, str], context: RenderContext, fmt: str
) -> Feed:
    """A refused request as a feed: the status code says it; a reader that
    shows the body anyway shows one entry, whose id is the same at every
    poll, naming what was wrong."""
    link, key = _locations()
    service = _name(context.settings)
    messages = "; ".join(clean_redacted(message) for message in errors.values())
    now = time.time()
    item = Item(
        _uuid(service, key, str(code), messages),
        f"Refused ({code}): {messages}",
        f"This feed's URL was refused with HTTP {code}: {messages}",
        now,
    )
    return Feed(
        id=_uuid(service, key),
        title=f"{service or 'Health'}: refused ({code})",
        subtitle=f"HTTP {code}: {messages}",
        link=clean(link),
        self_link=clean(f"{link}?format={fmt}" if link else ""),
        author=service or "flask-healthcheck",
        updated=now,
        items=[item],
    )


# -- the renderers -------------------------------------------------------------


def rss(report: HealthReport, context: RenderContext) -> str:
    """The report's endpoint as an RSS 2.0 feed of status changes."""
    return write_rss(_feed(report, context, "rss"))


def atom(report: HealthReport, context: RenderContext) -> str:
    """The report's endpoint as an Atom 1.0 feed of status changes."""
    return write_atom(_feed(report, context, "atom"))


def rss_error(code: int, errors: Mapping[str, str], context: RenderContext) -> str:
    return write_rss(_error_feed(code, errors, context, "rss"))


def atom_error(code: int, errors: Mapping[str, str], context: RenderContext) -> str:
    return write_atom(_error_feed(code, errors, context, "atom"))
