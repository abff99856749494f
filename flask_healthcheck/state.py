"""What the extension keeps for each app, and the one way to run its checks.

Views, ``flask health``, ``health.run()`` and the background refresh all
call :meth:`HealthCheckState.run`, so caching, single flight, timeouts and
signals behave the same whoever asks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from flask import Flask, current_app

from . import contrib
from .background import Refresher, reset_after_fork
from .checks import STATUSES, Check, HealthReport, Status, make_check
from .config import Settings
from .endpoints import Endpoint, check_name_clashes, check_url_clashes
from .errors import ConfigurationError
from .hostlock import HostLock, lock_name
from .runner import Runner
from .services import Service, check_dependencies, service_check
from .signals import SignalDispatcher

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "healthcheck"


@dataclass
class Registry:
    """Checks, services and endpoints, either shared by all apps or one app's own."""

    services: dict[str, Service] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
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

    def add_endpoint(self, endpoint: Endpoint) -> None:
        check_url_clashes([*self.endpoints.values(), endpoint])
        self.endpoints[endpoint.url] = endpoint
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
        self.runner = Runner(
            app,
            self.services,
            self.signals.put,
            default_timeout=settings.timeout,
            alerting=self._alerting,
        )
        #: With several processes per host, the one holding this lock refreshes
        #: (``HEALTHCHECK_RUN_DIR``). None without an election: with no run
        #: directory, or in tests (``TESTING``), whose parallel processes must
        #: not silence each other.
        self.host_lock: HostLock | None = None
        if settings.run_dir is not None and not app.testing:
            self.host_lock = HostLock(
                settings.run_dir, lock_name(app.import_name, settings.url)
            )
        self.refresher = Refresher(
            app.name,
            self._refresh,
            settings.interval,
            self.host_lock,
            on_elected=self._take_over,
        )
        #: Set by ``health.drain()``: readiness endpoints fail.
        self.draining = False
        reset_after_fork(self)
        self._validated: tuple[int, int] | None = None
        self._checks: tuple[Check, ...] = ()
        self._services: dict[str, Service] = {}
        self._component_types: dict[str, str] = {}
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's threads are gone, a
        lock one of them held at the fork would stay held forever, and its
        results and pending signals are not this process's."""
        self._lock = threading.Lock()
        self.runner.after_fork_in_child()
        self.signals.after_fork_in_child()
        self.refresher.after_fork_in_child()

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

    def check_clashes(
        self, *, endpoint: Endpoint | None = None, check: str | None = None
    ) -> None:
        """Raise :class:`ConfigurationError` if two URLs would mean one thing,
        with ``endpoint`` or a check named ``check`` added.

        Called by ``init_app`` and on registration, so a clash fails at
        start-up; checks are validated once more at the first run.
        """
        endpoints = self.endpoints()
        if endpoint is not None:
            endpoints.append(endpoint)
        check_url_clashes(endpoints)
        names = [*self.settings.services, *self.shared.checks, *self.own.checks]
        if check is not None:
            names.append(check)
        check_name_clashes(endpoints, names)

    def checks(self) -> tuple[Check, ...]:
        """Every check of this app, validated; raises ``ConfigurationError``."""
        self._validate()
        return self._checks

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
            self._component_types = {
                c.name: c.component_type for c in self._checks if c.component_type
            }
            self._validated = versions

    def _build_checks(self, services: dict[str, Service]) -> tuple[Check, ...]:
        checks: dict[str, Check] = {}
        seed = [service_check(name) for name in self.settings.services]
        if self.settings.callable is not None:
            seed.append(make_check(self.settings.callable))
        for check in (*seed, *self.shared.checks.values(), *self.own.checks.values()):
            if check.name in checks:
                raise ConfigurationError(
                    f"Two checks are named {check.name!r} (a service in"
                    f" HEALTHCHECK_SERVICES is a check of that name); rename one with"
                    f" name='...'."
                )
            checks[check.name] = check
        check_name_clashes(self.endpoints(), checks)
        for check in checks.values():
            check_dependencies(f"check {check.name!r}", check.parameters, services)
        for name, service in services.items():
            check_dependencies(f"service {name!r}", service.parameters, services, name)
        return tuple(checks.values())

    def select(
        self, *, tags: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> tuple[Check, ...]:
        """The checks carrying any of ``tags`` (all if None), less ``exclude``."""
        wanted = None if tags is None else frozenset(tags)
        left_out = frozenset(exclude)
        return tuple(
            check
            for check in self.checks()
            if check.name not in left_out and (wanted is None or check.tags & wanted)
        )

    # -- running --------------------------------------------------------------

    def run(
        self, checks: Sequence[Check] | None = None, *, fresh: bool = False
    ) -> HealthReport:
        """A report on ``checks`` (default: all of the app's).

        A probe (``fresh=False``) reuses each check's latest result while it
        is younger than ``HEALTHCHECK_CACHE_TTL``, or, while the background
        refresh runs in this process, than two intervals: a refresh that
        stalls never keeps a stale answer alive. ``fresh=True`` is for
        ``health.run()``, ``flask health`` and the refresh itself: every
        check runs now (or is joined while it runs), and the signals it
        causes are delivered before this returns.
        """
        if checks is None:
            checks = self.checks()
        max_age = 0.0 if fresh else self._max_age()
        report, number = self.runner.run(checks, max_age=max_age)
        if fresh:
            self.signals.wait(number, self.settings.timeout)
        return report

    def _max_age(self) -> float:
        settings = self.settings
        if settings.interval > 0 and self.refresher.running:
            return max(settings.cache_ttl, 2 * settings.interval)
        return settings.cache_ttl

    def _refresh(self) -> None:
        report, _ = self.runner.run(self.checks())
        if self.host_lock is not None and self.host_lock.held:
            # For the worker that takes over should this one die.
            self.host_lock.write_note(
                {
                    "status": report.status,
                    "checks": {r.name: r.status for r in report.checks},
                }
            )

    def _alerting(self) -> bool:
        """Whether runs in this process send the alert signals: unless the
        refresh runs here and another process of the host is the one
        elected to refresh (then it sends them)."""
        return not self.refresher.running or self.refresher.elected

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
