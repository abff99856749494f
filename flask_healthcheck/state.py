"""What the extension keeps for each app, and the one way to run its checks.

Views, ``flask health``, ``health.run()`` and the background refresh all
call :meth:`HealthCheckState.run`, so caching, single flight, timeouts and
signals behave the same whoever asks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from flask import Flask, current_app

from . import contrib
from .background import Refresher, WeakCall, release_when_dropped
from .checks import STATUSES, Check, HealthReport, Status, seed_check
from .config import Settings
from .delivery import STUCK_SECONDS, Delivery, Send, SignalDispatcher
from .endpoints import Endpoint, check_name_clashes, check_url_clashes
from .errors import ConfigurationError
from .forks import AfterFork, call_after_fork, check_fork, fork_hooks, reset_after_fork
from .format_registry import BUILT_IN, FormatRegistry, check_format_clashes
from .formats import Format
from .hostlock import HostLock, lock_name
from .logs import LogLines
from .reentry import answer_from_latest, inside
from .runner import Runner
from .sections import (
    Pending,
    Section,
    SectionRunner,
    build_sections,
    check_section_clash,
)
from .services import Service, check_dependencies, service_check

logger = logging.getLogger("flask_healthcheck")

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "healthcheck"

#: Seconds a process that does not refresh reuses its look at the host lock
#: (is another process refreshing?) when deciding whether to alert.
ALERTING_LOOK_SECONDS = 1.0


@dataclass
class Registry:
    """Checks, services, endpoints and formats, either shared by all apps or
    one app's own."""

    services: dict[str, Service] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    #: Formats added with ``add_format``, by media type.
    formats: dict[str, Format] = field(default_factory=dict)
    after_fork: list[AfterFork] = field(default_factory=list)
    sections: dict[str, Section] = field(default_factory=dict)
    #: Bumped on every change, so validation reruns only when needed.
    version: int = 0

    def add_service(self, service: Service) -> None:
        self.services[service.name] = service
        self.version += 1

    def add_check(self, check: Check) -> None:
        if check.name in self.checks:
            raise ConfigurationError(
                f"A check named {check.name!r} is already registered; pass"
                f" name='...' to register another one."
            )
        self.checks[check.name] = check
        self.version += 1

    def add_section(self, section: Section) -> None:
        check_section_clash(section, self.sections)
        self.sections[section.name] = section
        self.version += 1

    def add_endpoint(self, endpoint: Endpoint) -> None:
        check_url_clashes([*self.endpoints.values(), endpoint])
        self.endpoints[endpoint.url] = endpoint
        self.version += 1

    def add_format(self, format: Format) -> None:
        check_format_clashes(format, self.formats.values())
        self.formats[format.mimetype] = format
        self.version += 1


class HealthCheckState:
    """What the extension keeps for one app, in ``app.extensions["healthcheck"]``.

    :param shared: the registry of the extension object, serving every app.
    """

    def __init__(self, app: Flask, settings: Settings, shared: Registry) -> None:
        self.settings = settings
        self.shared = shared
        #: Services, checks and endpoints registered for this app only.
        self.own = Registry()
        self.signals = SignalDispatcher(app.name)
        #: The log lines of results, written by the thread that ran them.
        self.log_lines = LogLines()
        self.runner = Runner(
            app,
            self.services,
            self._deliver,
            default_timeout=settings.timeout,
            alerting=self._alerting,
            threads=settings.threads,
        )
        #: Runs the sections (``health.add_section``) on the runner's threads.
        self.section_runner = SectionRunner(self.runner, settings.timeout)
        #: With several processes per host, the one holding this lock refreshes
        #: (``HEALTHCHECK_RUN_DIR``). None without an election: with no run
        #: directory, or in tests (``TESTING``), whose parallel processes must
        #: not silence each other.
        self.host_lock: HostLock | None = None
        if settings.run_dir is not None and not app.testing:
            self.host_lock = HostLock(
                settings.run_dir,
                lock_name(app.import_name, settings.url, app.root_path),
                # The holder beats from a thread of its own, so no run
                # keeps it from beating: three intervals without a beat
                # mean it is frozen.
                stale_after=3 * settings.interval,
            )
        #: Whether another process holds the host lock, and until when
        #: (``time.monotonic()``) that answer is reused: see :meth:`_alerting`.
        self._elsewhere = (False, 0.0)
        # The refresher's thread holds this state weakly, so a dropped app
        # is collected, and the thread ends at its next run.
        refresh, take_over = WeakCall(self._refresh), WeakCall(self._take_over)
        self.refresher = Refresher(
            app.name,
            refresh,
            settings.interval,
            self.host_lock,
            on_elected=take_over,
        )
        refresh.gone = take_over.gone = self.refresher.stop
        if app.testing:
            # Requests don't start the refresh of a test app, only
            # ``health.start()`` does: a suite of many apps would run them
            # all, for ever.
            self.refresher.stopped = True
        #: Set by ``health.drain()``: readiness endpoints fail.
        self.draining = False
        #: What :meth:`run` called from a check or a subscriber has said once.
        self._reentry: set[str] = set()
        reset_after_fork(self, app)
        self._release_when_dropped()
        #: The checks of ``HEALTHCHECK_SERVICES`` and ``HEALTHCHECK_CALLABLE``,
        #: made here so that a callable that can't work fails in ``init_app``.
        self.seed_checks = self._seed_checks()
        self._validated: tuple[int, int] | None = None
        self._checks: tuple[Check, ...] = ()
        self._sections: tuple[Section, ...] = ()
        self._services: dict[str, Service] = {}
        self._component_types: dict[str, str] = {}
        self._formats: tuple[tuple[int, int], FormatRegistry] | None = None
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's threads are gone, a
        lock one of them held at the fork would stay held forever, and its
        results and pending signals are not this process's."""
        self._lock = threading.Lock()
        self.log_lines = LogLines()
        self._elsewhere = (False, 0.0)
        self.runner.after_fork_in_child()
        self.section_runner.after_fork_in_child()
        self.signals.after_fork_in_child()
        self.refresher.after_fork_in_child()
        self._release_when_dropped()

    def _release_when_dropped(self) -> None:
        """Once this state (and so its app) is collected, let the idle
        threads it made exit now rather than after their idle time."""
        previous = getattr(self, "_release", None)
        if previous is not None:
            previous.detach()
        self._release = release_when_dropped(self, self.runner.pool, self.signals)

    def run_after_fork(self) -> None:
        """In a forked child, once every app is reset: ``after_fork`` functions."""
        own = [*self.shared.after_fork, *self.own.after_fork]
        call_after_fork(self.runner.app, [*fork_hooks(), *own])

    # -- what the app has -----------------------------------------------------

    def services(self) -> dict[str, Service]:
        """Every service this app can inject: ready-made, shared, then own."""
        self._validate()
        return self._services

    def endpoints(self) -> list[Endpoint]:
        """The main endpoint, then the configured, shared and own extra ones."""
        return [
            Endpoint(self.settings.url, None, "HEALTHCHECK_URL"),
            *self.settings.endpoints,
            *self.shared.endpoints.values(),
            *self.own.endpoints.values(),
        ]

    def formats(self) -> FormatRegistry:
        """The formats this app answers in: the built-in ones, with those
        added to the extension, then to this app, each in the place of a
        built-in one of its media type (see ``add_format``)."""
        versions = (self.shared.version, self.own.version)
        if self._formats is None or self._formats[0] != versions:
            added = [*self.shared.formats.values(), *self.own.formats.values()]
            self._formats = (versions, BUILT_IN.with_formats(added))
        return self._formats[1]

    def check_clashes(
        self, *, endpoint: Endpoint | None = None, check: Check | None = None
    ) -> None:
        """Raise :class:`ConfigurationError` if two URLs would mean one thing,
        or two checks have one name, with ``endpoint`` or ``check`` added.

        Called by ``init_app`` and on registration, so a clash fails at
        start-up; checks are validated once more at the first run.
        """
        endpoints = self.endpoints()
        if endpoint is not None:
            endpoints.append(endpoint)
        check_url_clashes(endpoints)
        checks = [
            *self.seed_checks,
            *self.shared.checks.values(),
            *self.own.checks.values(),
        ]
        if check is not None:
            checks.append(check)
        check_name_clashes(endpoints, self._unique(checks))

    def checks(self) -> tuple[Check, ...]:
        """Every check of this app, validated; raises ``ConfigurationError``."""
        self._validate()
        return self._checks

    def start_sections(self) -> Pending:
        """Start the app's sections for a response that shows them; raises
        ``ConfigurationError`` as :meth:`checks` does."""
        self._validate()
        return self.section_runner.start(self._sections)

    def component_types(self) -> dict[str, str]:
        """health+json's ``componentType`` by check name, for checks with one,
        as of the last :meth:`checks` that validated (empty before that): a
        response about a configuration error still renders."""
        return self._component_types

    def _validate(self) -> None:
        versions = (self.shared.version, self.own.version)
        if self._validated == versions:
            return
        with self._lock:
            services = {
                **contrib.services(),
                **self.shared.services,
                **self.own.services,
            }
            self._services = services
            self._checks = self._build_checks(services)
            self._sections = build_sections(
                self.shared.sections, self.own.sections, services
            )
            self._component_types = {
                c.name: c.component_type for c in self._checks if c.component_type
            }
            self._validated = versions

    def _seed_checks(self) -> tuple[Check, ...]:
        seed = [service_check(name) for name in self.settings.services]
        if self.settings.callable is not None:
            seed.append(seed_check(self.settings.callable))
        return tuple(seed)

    def _unique(self, checks: Iterable[Check]) -> dict[str, Check]:
        """``checks`` by name; raises :class:`ConfigurationError` for a name
        taken twice."""
        unique: dict[str, Check] = {}
        for check in checks:
            if check.name in unique:
                raise ConfigurationError(
                    f"A check named {check.name!r} is already registered (each"
                    f" service in HEALTHCHECK_SERVICES is a check of that name, and"
                    f" HEALTHCHECK_CALLABLE is one more); pass name='...' to"
                    f" register another one."
                )
            unique[check.name] = check
        return unique

    def _build_checks(self, services: dict[str, Service]) -> tuple[Check, ...]:
        checks = self._unique(
            (*self.seed_checks, *self.shared.checks.values(), *self.own.checks.values())
        )
        check_name_clashes(self.endpoints(), checks)
        for check in checks.values():
            check_dependencies(f"check {check.name!r}", check.parameters, services)
        for name, service in services.items():
            check_dependencies(f"service {name!r}", service.parameters, services, name)
        return tuple(checks.values())

    def known_tags(self) -> frozenset[str]:
        """Every tag an endpoint declares or a check carries."""
        tags = {tag for check in self.checks() for tag in check.tags}
        for endpoint in self.endpoints():
            tags.update(endpoint.tags or ())
        return frozenset(tags)

    def check_tags(self, tags: Iterable[str]) -> None:
        """Raise :class:`ConfigurationError` for a tag that no endpoint
        declares and no check carries: a typo, not an empty selection.

        A tag an endpoint declares is valid without checks: a liveness
        probe with none means "the process answers".
        """
        known = self.known_tags()
        unknown = sorted(set(tags) - known)
        if unknown:
            names = ", ".join(map(repr, unknown))
            plural = "s" if len(unknown) > 1 else ""
            raise ConfigurationError(
                f"No endpoint or check has the tag{plural} {names}; known tags:"
                f" {', '.join(map(repr, sorted(known))) or 'none'}."
            )

    def select(
        self, *, tags: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> tuple[Check, ...]:
        """The checks carrying any of ``tags`` (all if None), less ``exclude``.

        Raises :class:`ConfigurationError` for a tag that no endpoint declares
        and no check carries (see :meth:`check_tags`).
        """
        if tags is None and not exclude:  # the main URL's every probe
            return self.checks()
        if tags is not None:
            tags = tuple(tags)
            self.check_tags(tags)
        wanted = None if tags is None else frozenset(tags)
        left_out = frozenset(exclude)
        return tuple(
            check
            for check in self.checks()
            if check.name not in left_out and (wanted is None or check.tags & wanted)
        )

    # -- running --------------------------------------------------------------

    def run(
        self,
        checks: Sequence[Check] | None = None,
        *,
        fresh: bool = False,
        deliver: bool = False,
        background: bool = False,
    ) -> HealthReport:
        """A report on ``checks`` (default: all of the app's).

        :param fresh: run every check now (or join its run in flight), for
            ``health.run()``, ``flask health`` and the refresh. A probe
            (False) reuses each check's latest result while it is younger
            than ``HEALTHCHECK_CACHE_TTL``, or, while the background refresh
            runs in this process, than two intervals: a refresh that stalls
            never keeps a stale answer alive.
        :param deliver: return only once the signals the run causes are
            delivered (for at most 10 s more than ``HEALTHCHECK_TIMEOUT``), as
            ``health.run()`` and ``flask health`` promise. Probes and the
            refresh never wait for subscribers.
        :param background: the refresh's run: checks that burn CPU share
            fewer threads (see :meth:`.Scheduler.start`).
        """
        check_fork()
        if checks is None:
            checks = self.checks()
        max_age = 0.0 if fresh else self._max_age()
        where = inside.get()
        if where is not None:  # in a check or a subscriber: no run from there
            asking = answer_from_latest(where, self.runner.app.name, self._reentry)
            checks = [check for check in checks if check.name != asking]
            max_age, deliver = math.inf, False
        self.log_lines.begin()
        try:
            report, number = self.runner.run(
                checks, max_age=max_age, background=background
            )
        finally:
            # On this thread, before the caller gets the report: a test's
            # captured log has the lines of the failures it caused.
            self.log_lines.end()
        # Long enough for a hung subscriber to be left behind and the others
        # to have their signals.
        bound = STUCK_SECONDS + self.settings.timeout
        if deliver and not self.signals.wait(number, bound):
            logger.warning(
                "The health signals were not all delivered within %g s; a"
                " subscriber may hang.",
                bound,
            )
        return report

    def _deliver(self, deliveries: list[Delivery]) -> int:
        """What the runner records, under its lock: log lines to be written
        by the thread running the checks, signals to the delivery thread."""
        lines = [d for d in deliveries if not isinstance(d, Send)]
        if lines:
            deliveries = [d for d in deliveries if isinstance(d, Send)]
            if self.log_lines.put(lines):
                # Recorded outside any run (a check that finished after its
                # timeout): no run's thread will write them.
                deliveries.append(self.log_lines.write_late)
        return self.signals.put(deliveries)

    def wait_for_signals(self, timeout: float) -> bool:
        """Wait until the signals of every run so far are delivered; False
        if some are not after ``timeout`` seconds. The one wait behind
        :meth:`HealthCheck.wait_for_signals` and ``record_signals``."""
        return self.signals.flush(timeout)

    def _max_age(self) -> float:
        settings = self.settings
        if settings.interval > 0 and self.refresher.running:
            return max(settings.cache_ttl, 2 * settings.interval)
        return settings.cache_ttl

    def _refresh(self) -> None:
        report = self.run(fresh=True, background=True)
        if self.host_lock is not None:
            # For the worker that takes over should this one die: queued
            # after this run's signals, so written once they are delivered
            # (and only while this process holds the lock). A holder killed
            # before leaves the previous note, and its successor sends again
            # what this one could not.
            note = {
                "status": report.status,
                "checks": {r.name: r.status for r in report.checks},
            }
            self.signals.put([partial(self.host_lock.write_note, note)])

    def _alerting(self) -> bool:
        """Whether runs in this process send the alert signals
        (``check_failed``, ``check_recovered``, ``health_changed``): not
        while another process of the host is the one elected to refresh,
        whether the refresh runs here (and lost the election) or not
        (``flask health``, ``health.run()`` next to a live refresher), nor
        from a run a pre-fork master had in progress when it forked."""
        if self.refresher.forked:  # the children refresh and alert
            return False
        if self.refresher.running:
            return self.refresher.elected
        if self.host_lock is None or self.settings.interval <= 0:
            return True  # no refresher anywhere: every run alerts
        elsewhere, until = self._elsewhere
        now = time.monotonic()
        if now >= until:  # a cheap look, but not one per result
            elsewhere = self.host_lock.held_elsewhere()
            self._elsewhere = (elsewhere, now + ALERTING_LOOK_SECONDS)
        return not elsewhere

    def _take_over(self) -> None:
        """This process was just elected: go on from what the previous
        refreshing worker last alerted, if it left a note."""
        assert self.host_lock is not None
        note = self.host_lock.read_note()
        if note is None:
            return
        checks = note.get("checks")
        status = note.get("status")
        if isinstance(checks, dict) and status in STATUSES:
            statuses: dict[str, Status] = {
                name: value for name, value in checks.items() if value in STATUSES
            }
            self.runner.assume(statuses, status)

    def start(self) -> None:
        """Start the background refresh now (see ``HEALTHCHECK_INTERVAL``)."""
        check_fork()
        if self.settings.interval <= 0:
            raise ConfigurationError(
                "HEALTHCHECK_INTERVAL must be a number of seconds greater than 0"
                " for the background refresh to start."
            )
        self.checks()
        self.refresher.start()


def get_state(app: Flask | None = None) -> HealthCheckState:
    """The extension's state for ``app``, or for the current app."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        state = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "The current Flask app is not registered with this 'HealthCheck'"
            " instance. Did you forget to call 'init_app', or did you create"
            " multiple 'HealthCheck' instances?"
        ) from None
    assert isinstance(state, HealthCheckState)
    return state
