"""The columns of one series of the history: 17 bytes a result.

A tuple of floats per result took over 100 bytes, and was one more object
for every garbage collection to visit: 1,000 checks with full histories
held 360,000 of them. A series keeps a time, a duration and a status
letter per result in arrays, and the monotonic time that measures each
result's age only where the wall clock stepped or drifted. Not
thread-safe: :class:`~flask_healthcheck.history.History` holds its lock.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import NamedTuple

from .checks import Status

#: Each status as one letter: a series keeps its statuses as a string.
LETTERS: dict[Status, str] = {"pass": "p", "warn": "w", "fail": "f"}
#: Each letter's status.
NAMES: dict[str, Status] = {letter: s for s, letter in LETTERS.items()}
#: Each status's letter as the byte a series keeps.
_CODES: dict[Status, int] = {s: ord(letter) for s, letter in LETTERS.items()}
#: Every change between two consecutive letters, for counting transitions
#: in C: no pattern can overlap itself, so ``str.count`` finds them all.
_CHANGES = tuple(a + b for a in "pwf" for b in "pwf" if a != b)
#: Seconds by which the monotonic time of an entry, which measures its age,
#: may be off: the wall clock may drift this far before a series notes it.
SKEW_TOLERANCE = 0.1
#: Entries a full series may hold over its limit before the oldest are
#: dropped, all at once: a full series dropping one entry per result cost
#: a call and three moves of its columns for every check of every run.
#: Readers never see them (:meth:`Series.columns` cuts to the limit).
SLACK = 8


class Columns(NamedTuple):
    """A series' entries as columns, oldest first: what readers of many
    entries use instead of building an
    :class:`~flask_healthcheck.history.Entry` for each."""

    #: Unix times.
    times: Sequence[float]
    #: One letter of :data:`LETTERS` per entry.
    statuses: str
    #: Seconds.
    durations: Sequence[float]


class Series:
    """The recent entries of one check, or of the overall status, as
    columns: 17 bytes an entry (a tuple and its floats took over 100).
    It keeps the last ``limit`` entries :meth:`add` is given, and up to
    :data:`SLACK` more until they are dropped together."""

    __slots__ = ("times", "durations", "statuses", "status", "since", "first", "shifts")

    def __init__(self) -> None:
        #: Unix times.
        self.times = array("d")
        #: Seconds.
        self.durations = array("d")
        #: One letter of :data:`LETTERS` each.
        self.statuses = bytearray()
        self.status: Status | None = None
        self.since = 0.0
        #: The number of the oldest entry kept (counting every entry added).
        self.first = 0
        #: An entry's monotonic time, which measures its age (a wall-clock
        #: step must neither keep nor drop an hour of history), is its
        #: ``time + History.offset + skew``; the skew is the same for every
        #: entry until the wall clock steps or drifts: each pair here is the
        #: number of the first entry with a new skew, and that skew.
        self.shifts: list[tuple[int, float]] = [(0, 0.0)]

    def add(
        self,
        at: float,
        status: Status,
        duration: float,
        skew: float,
        limit: int,
        oldest: float,
        offset: float,
    ) -> None:
        """Add an entry had at ``at`` (Unix time), keeping the last ``limit``
        and none older than ``oldest`` (monotonic; see :meth:`prune`)."""
        # What could raise first, so that the columns keep one length.
        letter, duration = _CODES[status], float(duration)
        if status != self.status:
            self.status = status
            self.since = at
        shifts = self.shifts
        drift = skew - shifts[-1][1]
        if drift > SKEW_TOLERANCE or drift < -SKEW_TOLERANCE:
            shifts.append((self.first + len(self.statuses), skew))
        times = self.times
        times.append(at)
        self.durations.append(duration)
        self.statuses.append(letter)
        if len(times) > limit + SLACK:
            self.drop(len(times) - limit)
        # The oldest entry's age, as prune reads it first (with one skew):
        # the entries are walked only once one of them is due (a limit of
        # 0 may have dropped them all).
        if len(shifts) > 1 or (times and times[0] + offset + shifts[0][1] < oldest):
            self.prune(oldest, offset)

    def drop(self, count: int) -> None:
        """Forget the ``count`` oldest entries."""
        del self.times[:count]
        del self.durations[:count]
        del self.statuses[:count]
        self.first += count
        shifts = self.shifts
        while len(shifts) > 1 and shifts[1][0] <= self.first:
            del shifts[0]

    def prune(self, oldest: float, offset: float) -> None:
        """Drop the entries older than ``oldest`` (a monotonic time)."""
        times, shifts, first = self.times, self.shifts, self.first
        count, size, shift = 0, len(times), 0
        while count < size:
            while shift + 1 < len(shifts) and shifts[shift + 1][0] <= first + count:
                shift += 1
            if times[count] + offset + shifts[shift][1] >= oldest:
                break
            count += 1
        if count:
            self.drop(count)

    def columns(self, oldest: float, offset: float, limit: int) -> Columns:
        """A copy of the last ``limit`` entries younger than ``oldest``
        (monotonic)."""
        self.prune(oldest, offset)
        if len(self.times) > limit:
            self.drop(len(self.times) - limit)
        statuses = self.statuses.decode("ascii")
        return Columns(self.times[:], statuses, self.durations[:])


def transitions(statuses: str) -> int:
    """Changes of status between consecutive letters, counted in C."""
    return sum(map(statuses.count, _CHANGES))
