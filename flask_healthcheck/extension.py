"""The extension object and the state it keeps for each app."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flask import Flask, current_app

from . import contrib
from .checks import (
    Check,
    CheckResult,
    HealthReport,
    Parameter,
    call_kind,
    injected_parameters,
)
from .config import DEFAULTS, Settings, read_settings, validate_timeout
from .endpoints import Endpoint, check_name_clashes, check_url_clashes, make_endpoint
from .errors import ConfigurationError
from .runner import BackgroundRefresh, Runner
from .services import Service, check_dependencies, observation

F = TypeVar("F", bound=Callable[..., Any])

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "healthcheck"


@dataclass
class _Registry:
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
    """What the extension keeps for one app, in ``app.extensions["healthcheck"]``."""

    def __init__(self, extension: HealthCheck, app: Flask, settings: Settings) -> None:
        self.extension = extension
        self.settings = settings
        #: Services and checks registered for this app only.
        self.own = _Registry()
        self.runner = Runner(
            app,
            self.services,
            default_timeout=settings.timeout,
            cache_ttl=settings.cache_ttl,
        )
        self.background = BackgroundRefresh(self.runner, self.checks, settings.interval)
        self._validated: tuple[int, int] | None = None
        self._checks: tuple[Check, ...] = ()
        self._component_types: dict[str, str] = {}
        self._lock = threading.Lock()

    def services(self) -> dict[str, Service]:
        """Every service this app can inject: ready-made, shared, then own."""
        return {
            **contrib.services(),
            **self.extension.registry.services,
            **self.own.services,
        }

    def endpoints(self) -> list[Endpoint]:
        """The main endpoint, then the configured, shared and own extra ones."""
        return [
            Endpoint(self.settings.url, None, "HEALTHCHECK_URL"),
            *self.settings.endpoints,
            *self.extension.registry.endpoints.values(),
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
        names = [
            *self.settings.services,
            *self.extension.registry.checks,
            *self.own.checks,
        ]
        if check is not None:
            names.append(check)
        check_name_clashes(endpoints, names)

    def checks(self) -> tuple[Check, ...]:
        """Every check of this app, validated; raises ``ConfigurationError``."""
        versions = (self.extension.registry.version, self.own.version)
        if self._validated != versions:
            with self._lock:
                self._checks = self._build_checks()
                self._component_types = {
                    c.name: c.component_type for c in self._checks if c.component_type
                }
                self._validated = versions
        return self._checks

    def component_types(self) -> dict[str, str]:
        """health+json's ``componentType`` by check name, for checks with one,
        as of the last :meth:`checks` that validated (empty before that): a
        response about a configuration error still renders."""
        return self._component_types

    def _build_checks(self) -> tuple[Check, ...]:
        checks: dict[str, Check] = {}
        seed = [_service_check(name) for name in self.settings.services]
        if self.settings.callable is not None:
            seed.append(make_check(self.settings.callable))
        for check in (
            *seed,
            *self.extension.registry.checks.values(),
            *self.own.checks.values(),
        ):
            if check.name in checks:
                raise ConfigurationError(
                    f"Two checks are named {check.name!r} (a service in"
                    f" HEALTHCHECK_SERVICES is a check of that name); rename one with"
                    f" name='...'."
                )
            checks[check.name] = check
        check_name_clashes(self.endpoints(), checks)
        services = self.services()
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

    def run(self, checks: Sequence[Check] | None = None) -> HealthReport:
        """A report on ``checks`` (default: all), from the background run if on."""
        if checks is None:
            checks = self.checks()
        if self.settings.interval > 0:
            self.background.start()
            self.background.first_run.wait(_longest_timeout(checks, self.settings) + 1)
            latest = self.background.latest
            if latest is not None:
                wanted = {check.name for check in checks}
                results = [r for r in latest.checks if r.name in wanted]
                if len(results) == len(wanted):
                    return HealthReport.from_results(results, latest.started_at)
        return self.runner.run(checks)


def _longest_timeout(checks: Iterable[Check], settings: Settings) -> float:
    return max(
        (c.timeout or settings.timeout for c in checks), default=settings.timeout
    )


def _build_only(**services: Any) -> CheckResult | None:
    """Building the services (done before the call) is the whole check.

    What the service reported with :func:`~flask_healthcheck.observe` while
    it was built (a ping's latency, free bytes) is the observed value.
    """
    for name in services:
        seen = observation(name)
        if seen is not None:
            return CheckResult(observed_value=seen.value, observed_unit=seen.unit)
    return None


def _service_check(name: str) -> Check:
    """The seed's ``services`` option: a check that builds one service."""
    return Check(name=name, func=_build_only, parameters=(Parameter(name, False),))


def make_check(
    func: Callable[..., Any],
    name: str | None = None,
    *,
    timeout: float | None = None,
    critical: bool = True,
    tags: Iterable[str] = (),
    component_type: str | None = None,
) -> Check:
    """Validate a check's options; errors name the check and the option."""
    if not callable(func):
        raise ConfigurationError(f"A check must be a function, got {func!r}.")
    if name is None:
        name = getattr(func, "__name__", "") or ""
        if name == "<lambda>":
            name = "callable"
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigurationError(
            f"A check name must be a non-empty string without '/', got {name!r}."
        )
    if timeout is not None:
        timeout = validate_timeout(f"timeout of check {name!r}", timeout)
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigurationError(
            f"tags of check {name!r} must be a list of strings such as"
            f" ['ready'], got {tags!r}."
        )
    return Check(
        name=name,
        func=func,
        timeout=timeout,
        critical=bool(critical),
        tags=frozenset(tags),
        component_type=component_type,
        parameters=injected_parameters(func),
        kind=call_kind(func),
    )


class HealthCheck:
    """Health endpoints for Flask apps.

    :param app: the app to set up now; or call :meth:`init_app` later.
    :param services: names of services to build on every run, each a check
        of that name. Overrides ``HEALTHCHECK_SERVICES``.
    :param callable: one more check, its parameters injected by name.
        Overrides ``HEALTHCHECK_CALLABLE``.
    :param url: the path of the endpoint. Overrides ``HEALTHCHECK_URL``.

    Checks and services registered on this object serve every app it is
    initialised on; pass ``app=`` to register for one app only.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        services: list[str] | None = None,
        callable: Callable[..., Any] | None = None,  # noqa: A002 - seed name
        url: str | None = None,
    ) -> None:
        self.registry = _Registry()
        #: The apps initialised so far, held weakly (as Flask-SQLAlchemy holds
        #: its engines), so that an endpoint added after ``init_app`` reaches
        #: their URL maps without this object keeping any app alive.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        self._overrides: dict[str, Any] = {
            "HEALTHCHECK_SERVICES": services,
            "HEALTHCHECK_CALLABLE": callable,
            "HEALTHCHECK_URL": url,
        }
        read_settings({**DEFAULTS}, self._overrides)  # fail fast on bad arguments
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up ``app``: config defaults, per-app state and the blueprint.

        Reads ``HEALTHCHECK_URL``, ``HEALTHCHECK_SERVICES``,
        ``HEALTHCHECK_CALLABLE``, ``HEALTHCHECK_TIMEOUT``,
        ``HEALTHCHECK_CACHE_TTL``, ``HEALTHCHECK_SHOW_DETAILS``,
        ``HEALTHCHECK_FAILURE_STATUS``, ``HEALTHCHECK_WARN_STATUS``,
        ``HEALTHCHECK_INTERVAL``, ``HEALTHCHECK_ENDPOINTS``,
        ``HEALTHCHECK_SERVICE_ID``, ``HEALTHCHECK_VERSION``,
        ``HEALTHCHECK_RELEASE_ID``, ``HEALTHCHECK_DESCRIPTION`` and
        ``HEALTHCHECK_HTML_REFRESH``; set them before calling it. A bad value,
        or two endpoints with one URL, raises :class:`ConfigurationError`
        naming the key.

        Also adds the ``flask health`` command to ``app.cli``.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "A 'HealthCheck' instance has already been registered on this app."
                " Import and use that instance instead of calling init_app again."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(
                key, value.copy() if isinstance(value, (list, dict)) else value
            )
        settings = read_settings(app.config, self._overrides)
        state = HealthCheckState(self, app, settings)
        state.check_clashes()
        from .cli import health_command
        from .views import make_blueprint

        app.register_blueprint(make_blueprint(state.endpoints()))
        app.extensions[EXTENSION_KEY] = state
        app.cli.add_command(health_command)
        self._apps.add(app)

    # -- registration ---------------------------------------------------------

    @overload
    def service(self, name: F) -> F: ...

    @overload
    def service(self, name: str, *, app: Flask | None = None) -> Callable[[F], F]: ...

    def service(
        self, name: str | F, *, app: Flask | None = None
    ) -> F | Callable[[F], F]:
        """Register a service factory; its parameters are injected by name.

        A generator factory is resumed after the check to tear down::

            @health.service("database")
            def database(config):
                conn = connect(config["DATABASE_URL"])
                yield conn
                conn.close()
        """
        if callable(name):
            self.add_service(name.__name__, name)
            return name

        def decorator(factory: F) -> F:
            self.add_service(name, factory, app=app)
            return factory

        return decorator

    def add_service(
        self, name: str, factory: Callable[..., Any], *, app: Flask | None = None
    ) -> None:
        """Register ``factory`` as service ``name``, for ``app`` only if given."""
        self._registry_for(app).add_service(Service.from_factory(name, factory))

    @overload
    def check(self, func: F) -> F: ...

    @overload
    def check(
        self,
        func: None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
        critical: bool = True,
        tags: Iterable[str] = (),
        component_type: str | None = None,
        app: Flask | None = None,
    ) -> Callable[[F], F]: ...

    def check(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
        critical: bool = True,
        tags: Iterable[str] = (),
        component_type: str | None = None,
        app: Flask | None = None,
    ) -> F | Callable[[F], F]:
        """Register a check, named after the function unless ``name`` is given.

        It passes when it returns True or None and fails when it returns
        False or raises. ``critical=False`` makes its failure a ``warn``.
        """

        def decorator(f: F) -> F:
            self.add_check(
                f,
                name=name,
                timeout=timeout,
                critical=critical,
                tags=tags,
                component_type=component_type,
                app=app,
            )
            return f

        return decorator(func) if func is not None else decorator

    def add_check(
        self,
        func: Callable[..., Any],
        name: str | None = None,
        *,
        timeout: float | None = None,
        critical: bool = True,
        tags: Iterable[str] = (),
        component_type: str | None = None,
        app: Flask | None = None,
    ) -> None:
        """Register ``func`` as a check; see :meth:`check`."""
        check = make_check(
            func,
            name,
            timeout=timeout,
            critical=critical,
            tags=tags,
            component_type=component_type,
        )
        for target in [app] if app is not None else list(self._apps):
            self._state(target).check_clashes(check=check.name)
        self._registry_for(app).add_check(check)

    def add_endpoint(
        self, url: str, tags: Iterable[str], *, app: Flask | None = None
    ) -> None:
        """Serve the checks carrying any of ``tags`` at ``url`` too.

        Like ``HEALTHCHECK_ENDPOINTS``; for ``app`` only if given. It also
        answers ``<url>/<check name>`` for one check. Works before and after
        :meth:`init_app`: apps already set up get the route on their URL map
        at once (so call it before the app serves its first request, as with
        any route). A URL that is already taken raises
        :class:`ConfigurationError`.

        :param url: a path such as ``"/livez"``.
        :param tags: the tags that select the checks, such as ``["live"]``.
        """
        endpoint = make_endpoint(url, tags)
        apps = [app] if app is not None else list(self._apps)
        for target in apps:
            self._state(target).check_clashes(endpoint=endpoint)
        self._registry_for(app).add_endpoint(endpoint)
        from .views import add_routes

        for target in apps:
            add_routes(target, endpoint)

    def _registry_for(self, app: Flask | None) -> _Registry:
        return self.registry if app is None else self._state(app).own

    # -- running --------------------------------------------------------------

    def run(self) -> HealthReport:
        """Run every check of the current app now and return the report.

        Needs an app context. Raises :class:`ConfigurationError` if the
        health configuration is wrong.
        """
        state = self._state()
        return state.runner.run(state.checks(), use_cache=False)

    def start(self, app: Flask | None = None) -> None:
        """Start the background refresh now instead of at the first request."""
        state = self._state(app)
        if state.settings.interval <= 0:
            raise ConfigurationError(
                "HEALTHCHECK_INTERVAL must be a number of seconds greater than 0"
                " for the background refresh to start."
            )
        state.checks()
        state.background.start()

    def stop(self, app: Flask | None = None) -> None:
        """Stop the background refresh of ``app`` (or the current app)."""
        self._state(app).background.stop()

    def _state(self, app: Flask | None = None) -> HealthCheckState:
        return get_state(app)


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
