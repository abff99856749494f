"""The recent past: a bounded record of each check's results in this process.

After an incident the first questions are "since when, how often, how
slow?", which the latest result alone can't answer. The runner hands every
result that becomes a check's latest to :meth:`History.record` (a cached
result that many probes reuse is one result, recorded once), and the app's
overall status after each run that produced one to
:meth:`History.record_overall`. The status page and ``<url>/history`` read
it back through :meth:`History.snapshot`.

Memory is fixed whatever the probe rate: each series keeps the last
:data:`MAX_RESULTS` results, and none older than :data:`MAX_AGE` seconds.
Only a result's time, status and duration are kept, never its error text,
in columns of 17 bytes a result (:mod:`~flask_healthcheck.series`): under
8 KB a check when full. Readers of many results use
:attr:`Trend.columns`; :attr:`Trend.entries` is built when first asked for.
The history belongs to one process: each worker of a pre-fork server has
its own, and a forked child starts an empty one.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from typing import Any, NamedTuple

from .checks import CheckResult, Status
from .series import LETTERS, NAMES, Columns, Series, transitions
from .threads import allocate_lock

#: Results kept per check (and runs kept for the overall status) at the most.
MAX_RESULTS = 360
#: Seconds a result is kept at the most.
MAX_AGE = 3600.0
#: Results in one ``<url>/history`` document at the most, all series
#: together: with many checks each series shows its newest results only, so
#: the document stays under about a megabyte however many checks there are.
DOCUMENT_RESULTS = 10_000


class Entry(NamedTuple):
    """One result as the history keeps it."""

    #: Unix time at which the result was had.
    at: float
    status: Status
    #: Seconds the check took; 0 for the overall status.
    duration: float


class Trend:
    """What one series looked like over the window, as of ``now``.

    Read-only. A trend made by :meth:`History.snapshot` builds its
    :attr:`entries` when first asked for: the status page and the history
    document read the :attr:`columns` instead.
    """

    __slots__ = ("_entries", "_columns", "status", "since", "transitions")

    _entries: tuple[Entry, ...] | None
    _columns: Columns | None

    #: The latest status, or None if nothing was recorded yet.
    status: Status | None
    #: Unix time at which the latest status began. It may predate the
    #: oldest entry: a check passing for two hours began passing then.
    since: float | None
    #: Changes of status between consecutive entries.
    transitions: int

    def __init__(
        self,
        entries: tuple[Entry, ...],
        status: Status | None,
        since: float | None,
        transitions: int,
        *,
        columns: Columns | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_entries", None if columns is not None else tuple(entries))
        set_(self, "_columns", columns)
        set_(self, "status", status)
        set_(self, "since", since)
        set_(self, "transitions", transitions)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Trend is read-only: can't set {name!r}")

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Oldest first."""
        entries: tuple[Entry, ...] | None = self._entries
        if entries is None:
            columns = self.columns
            statuses = map(NAMES.__getitem__, columns.statuses)
            rows = zip(columns.times, statuses, columns.durations, strict=True)
            # tuple.__new__ in C, not Entry's own __new__ in Python: twice
            # as fast, for readers that want every entry of 1,000 checks.
            entries = tuple(map(tuple.__new__, repeat(Entry), rows))
            object.__setattr__(self, "_entries", entries)
        return entries

    @property
    def columns(self) -> Columns:
        """The entries as columns, oldest first."""
        columns: Columns | None = self._columns
        if columns is None:
            entries = self._entries or ()
            columns = Columns(
                array("d", [entry.at for entry in entries]),
                "".join([LETTERS[entry.status] for entry in entries]),
                array("d", [entry.duration for entry in entries]),
            )
            object.__setattr__(self, "_columns", columns)
        return columns

    @property
    def count(self) -> int:
        """How many entries there are (without building them)."""
        if self._entries is not None:
            return len(self._entries)
        return len(self.columns.statuses)

    @property
    def uptime(self) -> float | None:
        """The share of entries that did not fail (``warn`` still serves
        traffic), from 0 to 1; None without entries."""
        statuses = self.columns.statuses
        if not statuses:
            return None
        return (len(statuses) - statuses.count("f")) / len(statuses)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trend):
            return NotImplemented
        return (self.status, self.since, self.transitions, self.entries) == (
            other.status,
            other.since,
            other.transitions,
            other.entries,
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (Trend, (self.entries, self.status, self.since, self.transitions))

    def __repr__(self) -> str:
        return (
            f"Trend(entries=<{self.count} entries>, status={self.status!r},"
            f" since={self.since!r}, transitions={self.transitions!r})"
        )


@dataclass(frozen=True)
class Snapshot:
    """The history as one consistent read."""

    #: Unix time of the read.
    now: float
    #: Unix time at which this process's history began.
    started_at: float
    #: The history's bounds: entries per series, and their age in seconds.
    max_results: int
    max_age: float
    #: The app's overall status per run; None if not asked for.
    overall: Trend | None
    #: By check name, in the order asked for; names never recorded are left out.
    checks: dict[str, Trend]


class History:
    """The recent results of one app's checks in this process. Thread-safe.

    :param max_results: entries kept per series at the most.
    :param max_age: seconds an entry is kept at the most.
    :param clock: returns the Unix time, shown with each entry; tests pass
        their own, which then also measures ages.
    :param monotonic: measures the ages of entries (default
        ``time.monotonic``, or ``clock`` if that is given).
    """

    def __init__(
        self,
        *,
        max_results: int = MAX_RESULTS,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.max_results = max_results
        self.max_age = max_age
        self.clock: Callable[[], float] = time.time if clock is None else clock
        if monotonic is None:
            monotonic = time.monotonic if clock is None else clock
        self.monotonic = monotonic
        #: Unix time at which this history began (the process, or its fork).
        self.started_at = self.clock()
        #: The monotonic clock's distance from the Unix time: each entry
        #: keeps only how far its own differs from this.
        self.offset = self.monotonic() - self.started_at
        # An operating system lock, also under gevent: the runner records
        # results from the checks' threads while holding its own.
        self._lock = allocate_lock()
        self._checks: dict[str, Series] = {}
        self._overall = Series()
        #: Whether a result was recorded since the last overall status.
        self._new_results = False

    def record(self, result: CheckResult) -> None:
        """Add ``result``, which just became its check's latest."""
        self.record_many((result,))

    def record_many(
        self, results: Sequence[CheckResult], ticks: Sequence[float] | None = None
    ) -> None:
        """Add ``results``, which became their checks' latest in this order
        (the results of a run, recorded together): each at its ``ticks``
        (:attr:`monotonic` times at which it was had), or now."""
        at = self.clock()
        tick = self.monotonic()
        # What :meth:`_add` works out per entry, once for them all: an
        # entry had ``age`` seconds ago is at ``at - age``, ``tick - age``,
        # so its skew is the same.
        offset, limit = self.offset, self.max_results
        skew, oldest = tick - at - offset, tick - self.max_age
        if ticks is None:
            ticks = [tick] * len(results)
        checks = self._checks
        with self._lock:
            for result, had in zip(results, ticks, strict=True):
                when = at - (tick - had)
                series = checks.get(result.name)
                if series is None:
                    series = checks[result.name] = Series()
                series.add(
                    when, result.status, result.duration, skew, limit, oldest, offset
                )
            self._new_results = True

    def record_overall(self, status: Status) -> None:
        """Add the app's status after a run, if the run recorded a result:
        runs that only reused cached results, or joined another's, add
        nothing, so the overall strip has one entry per run that counted."""
        with self._lock:
            if not self._new_results:
                return
            self._new_results = False
            at = self.clock()
            tick = self.monotonic()
            self._add(self._overall, at, tick, status, 0.0)

    def _add(
        self, series: Series, at: float, tick: float, status: Status, duration: float
    ) -> None:
        offset = self.offset
        skew, oldest = tick - at - offset, tick - self.max_age
        series.add(at, status, duration, skew, self.max_results, oldest, offset)

    def snapshot(self, names: Iterable[str] = (), *, overall: bool = True) -> Snapshot:
        """The trends of the checks ``names`` and, if ``overall``, of the
        app's overall status, all as of one moment."""
        now = self.clock()
        oldest = self.monotonic() - self.max_age
        offset = self.offset
        with self._lock:
            limit = self.max_results
            checks = {
                name: _trend(self._checks[name], oldest, offset, limit)
                for name in names
                if name in self._checks
            }
            return Snapshot(
                now=now,
                started_at=self.started_at,
                max_results=self.max_results,
                max_age=self.max_age,
                overall=_trend(self._overall, oldest, offset, limit)
                if overall
                else None,
                checks=checks,
            )

    def names(self) -> list[str]:
        """The checks recorded so far, in the order they were first seen."""
        with self._lock:
            return list(self._checks)


def _trend(series: Series, oldest: float, offset: float, limit: int) -> Trend:
    columns = series.columns(oldest, offset, limit)
    since = series.since if series.status is not None else None
    count = transitions(columns.statuses)
    return Trend((), series.status, since, count, columns=columns)


# -- as JSON -------------------------------------------------------------------


def iso_time(timestamp: float) -> str:
    """``2025-05-01T12:00:00.123Z``: ISO 8601 in UTC."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _trend_json(trend: Trend, *, durations: bool, limit: int) -> dict[str, Any]:
    uptime = trend.uptime
    times, statuses, kept = trend.columns
    count = len(statuses)
    results: list[dict[str, Any]] = []
    for i in range(max(0, count - limit) if limit else count, count):
        item: dict[str, Any] = {
            "time": iso_time(times[i]),
            "status": NAMES[statuses[i]],
        }
        if durations:
            item["duration_ms"] = round(kept[i] * 1000, 1)
        results.append(item)
    return {
        "status": trend.status,
        "since": None if trend.since is None else iso_time(trend.since),
        "uptime_percent": None if uptime is None else round(uptime * 100, 2),
        "transitions": trend.transitions,
        "count": count,
        "results": results,
    }


def series_limit(series: int, limit: int | None, max_results: int) -> int:
    """Results shown per series: ``limit`` (all kept by default), cut so that
    ``series`` series together show about :data:`DOCUMENT_RESULTS` at most."""
    wanted = max_results if limit is None else min(limit, max_results)
    return min(wanted, max(1, DOCUMENT_RESULTS // max(1, series)))


def history_document(
    snapshot: Snapshot, *, details: bool, limit: int | None = None
) -> dict[str, Any]:
    """``<url>/history`` as JSON-ready data: the overall status per run and,
    with ``details``, each check's results with their durations.

    Each series shows its newest ``limit`` results (see :func:`series_limit`);
    its status, uptime, transitions and ``count`` cover every result kept.
    """
    shown = len(snapshot.checks) if details else 0
    per_series = series_limit(
        shown + (snapshot.overall is not None), limit, snapshot.max_results
    )
    document: dict[str, Any] = {
        "since": iso_time(snapshot.started_at),
        "max_results": snapshot.max_results,
        "max_age_seconds": snapshot.max_age,
        "limit": per_series,
    }
    if snapshot.overall is not None:
        document["overall"] = _trend_json(
            snapshot.overall, durations=False, limit=per_series
        )
    if details:
        document["checks"] = {
            name: _trend_json(trend, durations=True, limit=per_series)
            for name, trend in snapshot.checks.items()
        }
    return document
