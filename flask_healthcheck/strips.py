"""The recent past drawn for the status page: strips, stats, sparklines.

A strip is a row of cells, one per run or per bucket of runs, coloured by
the worst status among them; its text alternative says how many runs had
each status, and each cell's hover title what it holds (on pages small
enough for titles). Read from a trend's columns, never its entries: a page
of 1,000 checks reads 360,000 runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .checks import Status
from .history import Trend
from .series import LETTERS, NAMES, Columns

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
#: A page whose cells are too many for titles makes them coarser (more
#: runs per cell) to keep titles, if its strips keep this many cells.
MIN_TITLED_CELLS = 60
#: Seconds at the top of a sparkline at the least.
SPARK_FLOOR = 0.001
#: How the strip and the stats name each status.
_PARTICIPLES: dict[Status, str] = {
    "pass": "passing",
    "warn": "warning",
    "fail": "failing",
}


def utc(timestamp: float) -> datetime:
    """``timestamp`` (Unix time) as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, timezone.utc)


def format_duration(seconds: float) -> str:
    """``12.3 ms`` below a second, ``2.05 s`` above: readable at a glance."""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


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


def clock_time(timestamp: float, now: float) -> str:
    """``12:03 UTC``, with the date if it is not within the last 12 hours."""
    moment = utc(timestamp)
    if now - timestamp > 12 * 3600:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%H:%M UTC")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Cell:
    """One cell of a strip: a run, or a bucket of runs."""

    #: ``p``, ``w`` or ``f``: the CSS class of its colour.
    css: str
    #: Its slot on the strip, from the left.
    x: int
    #: What hovering it says (see :func:`cell_title`), or nothing.
    title: str


@dataclass(frozen=True)
class TrendView:
    """What the page shows of one series."""

    #: The strip's text for screen readers: how many runs had each status.
    label: str
    cells: list[Cell]
    #: ``99.7 % up (...) · 2 transitions · passing for 52 min, since 12:03 UTC``.
    stats: str
    #: The sparkline's points, or None (no durations, or a single run).
    spark: str | None = None
    spark_label: str = ""


#: Letters of :data:`~flask_healthcheck.series.LETTERS`, the worst first.
_WORST_FIRST = ("f", "w", "p")


def _groups(count: int, factor: int) -> list[range]:
    """The indexes of ``count`` entries cut into groups of ``factor`` runs,
    counted from the newest, so that the strips of one page line up on
    their right edge."""
    ends = range(count, 0, -factor)
    return [range(max(0, end - factor), end) for end in reversed(ends)]


def _worst(statuses: str) -> str:
    """The letter of the worst status in ``statuses`` (a search in C)."""
    for letter in _WORST_FIRST:
        if letter in statuses:
            return letter
    return "p"


def _tally(statuses: str) -> str:
    """``5 passing, 2 failing``: the statuses present, the worst last."""
    counts = [(statuses.count(LETTERS[s]), s) for s in _PARTICIPLES]
    return ", ".join(f"{n} {_PARTICIPLES[s]}" for n, s in counts if n)


def cell_title(columns: Columns, group: range, durations: bool) -> str:
    """What hovering a cell says: its run (``12:03:10 UTC · fail · 3.2
    ms``), or for a cell of several, their span and how many had each
    status (``12:03:10–12:08:10 UTC · 7 runs: 5 passing, 2 failing``)."""
    times = columns.times
    first = utc(times[group.start]).strftime("%H:%M:%S")
    if len(group) == 1:
        title = f"{first} UTC · {NAMES[columns.statuses[group.start]]}"
        if durations:
            title += f" · {format_duration(columns.durations[group.start])}"
        return title
    last = utc(times[group.stop - 1]).strftime("%H:%M:%S")
    tally = _tally(columns.statuses[group.start : group.stop])
    return f"{first}–{last} UTC · {len(group)} runs: {tally}"


def trend_view(
    trend: Trend | None,
    now: float,
    slots: int,
    *,
    durations: bool,
    factor: int = 1,
    titles: bool = True,
    drawn: bool = True,
) -> TrendView | None:
    """The strip of ``trend``, its cells right-aligned on ``slots`` slots
    (the newest last), its stats and, with ``durations``, its sparkline
    drawn on the same slots. None for a series without entries.

    :param factor: runs per cell; a cell of several is coloured by the
        worst status among them, its sparkline point the longest duration.
    :param titles: whether each cell says on hover what it holds: its run,
        or the span of its runs and how many had each status.
    :param drawn: False for the stats only, without strip or sparkline.
    """
    if trend is None or trend.since is None:
        return None
    # Columns, not entries: with 1,000 checks, building an entry per run
    # took most of the page's time.
    columns = trend.columns
    statuses = columns.statuses
    count = len(statuses)
    if not count:
        return None
    groups = _groups(count, factor) if drawn else []
    offset = slots - len(groups)
    cells = [
        Cell(
            _worst(statuses[group.start : group.stop]),
            offset + i,
            cell_title(columns, group, durations) if titles else "",
        )
        for i, group in enumerate(groups)
    ]
    counts = {s: statuses.count(LETTERS[s]) for s in _PARTICIPLES}
    runs = plural(count, "run")
    stats = [
        f"{format_uptime((count - counts['fail']) / count)} up"
        f" ({count - counts['fail']} of {runs} in the last"
        f" {format_period(now - columns.times[0])})",
        plural(trend.transitions, "transition"),
        f"{_PARTICIPLES[NAMES[statuses[-1]]]} for {format_period(now - trend.since)},"
        f" since {clock_time(trend.since, now)}",
    ]
    view = TrendView(
        label=f"Last {runs}: "
        + ", ".join(f"{counts[s]} {_PARTICIPLES[s]}" for s in _PARTICIPLES),
        cells=cells,
        stats=" · ".join(stats),
    )
    if not durations or len(groups) < 2:
        return view
    # A viewBox 30 high, the line kept 2 from the edges; drawn to at least
    # 1 ms, so that a check of microseconds draws no noise as spikes.
    kept = columns.durations
    peaks = [max(kept[group.start : group.stop]) for group in groups]
    longest = max(peaks)
    scale = 26 / max(longest, SPARK_FLOOR)
    points = " ".join(
        f"{offset + i + 0.42:g},{28 - peak * scale:.1f}" for i, peak in enumerate(peaks)
    )
    return replace(
        view,
        spark=points,
        spark_label=f"Duration of the last {runs}: longest"
        f" {format_duration(longest)}, latest {format_duration(columns.durations[-1])}",
    )


@dataclass(frozen=True)
class Scale:
    """How a page draws its strips, one scale for all so that runs line up."""

    #: Slots across a strip.
    slots: int
    #: Runs per cell.
    factor: int
    #: Whether cells carry hover titles.
    titles: bool
    #: Whether the checks' strips are drawn (else only their stats).
    checks_drawn: bool


def page_scale(overall: Trend | None, checks: list[Trend | None]) -> Scale:
    """Fit the page's strips in :data:`CELL_BUDGET` cells, with hover
    titles if they fit in :data:`TITLE_BUDGET`, even by coarser cells, as
    long as a strip keeps :data:`MIN_TITLED_CELLS` of them."""
    with_entries = [trend for trend in checks if trend is not None and trend.count]
    checks_drawn = CELL_BUDGET // (1 + len(with_entries)) >= MIN_CELLS
    drawn = [*with_entries] if checks_drawn else []
    if overall is not None and overall.count:
        drawn.append(overall)
    longest = max((trend.count for trend in drawn), default=0)

    def fit(budget: int) -> int:
        """Runs per cell for all strips to fit in ``budget`` cells."""
        return max(1, math.ceil(longest / (budget // max(1, len(drawn)) or 1)))

    def cells(factor: int) -> int:
        return sum(math.ceil(trend.count / factor) for trend in drawn)

    factor = fit(CELL_BUDGET)
    titles = cells(factor) <= TITLE_BUDGET
    if not titles and math.ceil(longest / fit(TITLE_BUDGET)) >= MIN_TITLED_CELLS:
        factor, titles = fit(TITLE_BUDGET), True
    slots = math.ceil(longest / factor)
    return Scale(
        slots=max(MIN_SLOTS, slots) if factor == 1 else slots,
        factor=factor,
        titles=titles,
        checks_drawn=checks_drawn,
    )
