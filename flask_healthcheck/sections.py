"""Sections: more about the service than its checks (py-healthcheck's
``add_section``), such as the build it runs or its queue lengths.

A section is a function whose return value is shown under its name in the
formats with details (health+json, HTML, ``text/plain``), never in the
clearskies envelope. Sections run on the request that shows them, on the threads the
checks run on, in the app's context and with their parameters injected by
name like a check's; each is bounded by ``HEALTHCHECK_TIMEOUT`` and, like a
check, a section still running is joined or reported, never started again:
a hung section costs one thread, however many requests ask.

Whatever a section returns is made fit to show on its own thread: every
string redacted and cut, values under a secret-looking key masked (a
section with a secret-looking name, ``api_token``, shows ``***`` and is not
run), what
JSON can't carry shown as its redacted text, and the whole bounded.
Whatever it raises (``SystemExit`` included) is shown, redacted, as its
value, and logged.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .app_secrets import is_secret_key
from .checks import Check, CheckResult, call_kind, injected_parameters
from .errors import ConfigurationError
from .execution import Execution, wait
from .redact import MASK, describe_exception, redact, redact_value
from .runner import Runner
from .services import Service, check_dependencies
from .threads import allocate_lock

logger = logging.getLogger("flask_healthcheck")

#: The top-level fields of health+json (draft-inadarei-api-health-check),
#: where each section is a key too: no section may take one.
RESERVED_NAMES = frozenset(
    {
        "status",
        "version",
        "releaseId",
        "notes",
        "output",
        "checks",
        "links",
        "serviceId",
        "description",
    }
)
#: Values (strings, numbers, items of lists and dicts) a section shows at
#: the most; the rest is left out, which the value says.
MAX_ITEMS = 500
#: How deep lists and dicts of a section's value are shown.
MAX_DEPTH = 8
#: An int with more bits is shown as text: ``json.dumps`` can't write
#: one of over 4,300 digits, and nobody reads one.
MAX_INT_BITS = 128
#: Marks what was left out of a value.
LEFT_OUT = "..."

#: What a value's lists and dicts may be.
_CONTAINERS = (Mapping, list, tuple, set, frozenset)
#: Numbers in a reason: "still running after 3.1 s" and "after 4.2 s" are
#: one reason, logged once.
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
#: ``Execution.result`` of a section run that has its value.
_DONE = CheckResult(name="section")


@dataclass(frozen=True)
class Section:
    """A registered section: a name and the function giving its value."""

    name: str
    func: Callable[..., Any]
    #: The same function as a check, so the executor can call it.
    check: Check = field(repr=False, compare=False)


def make_section(name: Any, func: Any) -> Section:
    """Validate a section; errors name the argument and what it may be."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(
            f"The name of a section must be a non-empty string, got {name!r}."
        )
    if name in RESERVED_NAMES:
        raise ConfigurationError(
            f"A section can't be named {name!r}: health+json shows each section"
            f" as a top-level field, and {name!r} is one of its own"
            f" ({', '.join(sorted(RESERVED_NAMES))}). Choose another name."
        )
    if not callable(func):
        raise ConfigurationError(
            f"The func of section {name!r} must be callable (a function whose"
            f" parameters are injected by name, or one with none), got {func!r}."
        )
    check = Check(
        name=name,
        func=func,
        parameters=injected_parameters(func),
        kind=call_kind(func),
    )
    return Section(name, func, check)


def check_section_clash(section: Section, *registered: Mapping[str, Section]) -> None:
    """Raise :class:`ConfigurationError` if ``section``'s name is taken."""
    if any(section.name in sections for sections in registered):
        raise ConfigurationError(
            f"A section named {section.name!r} is already registered; choose"
            f" another name."
        )


def build_sections(
    shared: Mapping[str, Section],
    own: Mapping[str, Section],
    services: Mapping[str, Service],
) -> tuple[Section, ...]:
    """An app's sections (shared, then its own), their parameters checked
    against its services as a check's are."""
    sections = [*shared.values()]
    # A copy, made at once: add_section may add one while this runs.
    for section in [*own.values()]:
        check_section_clash(section, shared)
        sections.append(section)
    for section in sections:
        check_dependencies(
            f"section {section.name!r}", section.check.parameters, services
        )
    return tuple(sections)


# -- making a value fit to show ---------------------------------------------------


def shown_value(value: Any) -> Any:
    """``value`` as JSON can carry it and anyone may see it: strings
    redacted and cut (:func:`~flask_healthcheck.redact.redact_value`),
    dict keys too, the value of a secret-looking key (``password``)
    masked, non-finite floats and what JSON can't carry (a ``datetime``)
    as their redacted text, tuples and sets as lists; at most
    :data:`MAX_ITEMS` values and :data:`MAX_DEPTH` levels."""
    return _shown(value, [MAX_ITEMS], 0)


def _shown(value: Any, budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            return f"<an int of {value.bit_length()} bits>"
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return redact_value(str.__str__(value))
    if isinstance(value, _CONTAINERS) and depth >= MAX_DEPTH:
        return LEFT_OUT  # not its text: that of a big structure costs
    if isinstance(value, Mapping):
        shown: dict[str, Any] = {}
        for key, item in value.items():
            if budget[0] <= 0:
                shown[LEFT_OUT] = LEFT_OUT
                break
            name = key if isinstance(key, str) else _text(key)
            if is_secret_key(name[:200]):
                budget[0] -= 1
                shown[redact_value(name)] = MASK
            else:
                shown[redact_value(name)] = _shown(item, budget, depth + 1)
        return shown
    if isinstance(value, _CONTAINERS):
        items: list[Any] = []
        for item in value:
            if budget[0] <= 0:
                items.append(LEFT_OUT)
                break
            items.append(_shown(item, budget, depth + 1))
        return items
    return redact_value(_text(value))


def _text(value: Any) -> str:
    try:
        return str(value)
    except BaseException:  # a __str__ that raises (or exits)
        return f"<a {type(value).__name__} that can't be shown>"


# -- running them -----------------------------------------------------------------


class _Run(Execution):
    """One run of one section, shared by the requests that join it."""

    __slots__ = ("value",)

    def __init__(self, check: Check, timeout: float, now: float) -> None:
        super().__init__(check, timeout, now)
        #: The value to show, set with ``result``.
        self.value: Any = None


class Pending:
    """Sections started for a request, collected once its checks ran."""

    def __init__(
        self, runner: SectionRunner, plan: list[tuple[str, _Run | None, Any]]
    ) -> None:
        self._runner = runner
        self._plan = plan

    def values(self) -> dict[str, Any]:
        """Each section's value by name (redacted), waiting for each at most
        until its deadline."""
        return {
            redact(name): value if run is None else self._runner.collect(run)
            for name, run, value in self._plan
        }


class SectionRunner:
    """Runs the sections of one app on its runner's threads. Thread-safe.

    :param runner: the app's check runner, whose scheduler (threads) and
        executor (app context, injection, teardown) sections use.
    :param timeout: seconds a section may run (``HEALTHCHECK_TIMEOUT``).
    """

    def __init__(self, runner: Runner, timeout: float) -> None:
        self._runner = runner
        self.timeout = timeout
        self._reset()

    def _reset(self) -> None:
        self._lock = allocate_lock()
        #: The run in flight of each section, by name.
        self._running: dict[str, _Run] = {}
        #: The reason last logged as a WARNING, by section name.
        self._logged: dict[str, str] = {}

    def after_fork_in_child(self) -> None:
        """The parent's threads, and so its runs in flight, are not here."""
        self._reset()

    def start(self, sections: Iterable[Section]) -> Pending:
        """Start ``sections``, or join their runs in flight; a section still
        running past its deadline is reported, not started again."""
        plan: list[tuple[str, _Run | None, Any]] = []
        mine: list[Execution] = []
        scheduler = self._runner.scheduler
        inline = scheduler.inline
        with self._lock:
            now = begins = time.monotonic()
            for section in sections:
                if is_secret_key(section.name[:200]):  # as a value's own keys
                    plan.append((section.name, None, MASK))
                    continue
                run = self._running.get(section.name)
                if run is None:
                    run = self._running[section.name] = _Run(
                        section.check, self.timeout, begins
                    )
                    if inline:
                        begins = run.deadline
                    mine.append(run)
                elif now >= run.deadline:
                    reason = (
                        f"still running after {now - run.started:.1f} s (timed out"
                        f" after {run.timeout:g} s); not started again"
                    )
                    value = self._failed(run, reason, still=True)
                    plan.append((section.name, None, value))
                    continue
                plan.append((section.name, run, None))
        scheduler.start(mine, self._execute_each, self._give_up)
        return Pending(self, plan)

    def collect(self, run: _Run) -> Any:
        """The value of ``run``, or a timeout at its deadline."""
        wait(run, self._lock)
        with self._lock:
            if run.result is None:
                self._set(run, f"timed out after {run.timeout:g} s")
                timed_out = True
            else:
                timed_out = False
            value = run.value
        if timed_out:
            self._failed(run, value)
        return value

    def _execute_each(self, executions: Iterator[Execution]) -> None:
        """Run the sections one after another; never raises."""
        for execution in executions:
            self._execute(execution)

    def _execute(self, execution: Execution) -> None:
        """Run one section and keep its value; never raises."""
        assert isinstance(execution, _Run)
        error: BaseException | None = None
        try:
            value = self._runner.call(execution.check, execution.deadline)
            # On the section's time: a slow or raising __str__ is its own.
            shown = shown_value(value)
        except BaseException as e:  # SystemExit in a section must not end a worker
            error = e
            try:
                shown = describe_exception(e)
            except BaseException:
                shown = f"{type(e).__name__} (its message could not be read)"
        self._finish(execution, shown, error)

    def _give_up(self, execution: Execution, reason: str) -> None:
        assert isinstance(execution, _Run)
        self._finish(execution, reason, None, failed=True)

    def _finish(
        self,
        run: _Run,
        value: Any,
        error: BaseException | None,
        *,
        failed: bool = False,
    ) -> None:
        with self._lock:
            if self._running.get(run.check.name) is run:
                del self._running[run.check.name]
            mine = run.result is None
            if mine:
                self._set(run, value)
            if run.joined is not None:
                run.joined.set()
        if mine and (error is not None or failed):
            self._failed(run, value, error)
        elif mine:
            self._logged.pop(run.check.name, None)

    @staticmethod
    def _set(run: _Run, value: Any) -> None:
        run.value = value
        run.result = _DONE

    def _failed(
        self,
        run: Execution,
        reason: str,
        error: BaseException | None = None,
        *,
        still: bool = False,
    ) -> str:
        """Log that a section failed: a WARNING (with the traceback) when the
        reason is new, DEBUG while it stays the same (or, ``still``, while
        a section whose failure was logged goes on running). Returns
        ``reason``."""
        name = run.check.name
        gist = _NUMBER.sub("#", reason)
        if self._logged.get(name) == gist or (still and name in self._logged):
            logger.debug("Health section %r still fails: %s", name, reason)
        else:
            self._logged[name] = gist
            logger.warning(
                "Health section %r of app %r failed: %s",
                name,
                self._runner.app.name,
                reason,
                exc_info=error,
            )
        return reason
