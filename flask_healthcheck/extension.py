"""The extension object: registration and ``init_app``."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from flask import Flask

from .app_secrets import register_app_secrets
from .checks import callable_check, make_check
from .checkset import Registry
from .cli import health_command
from .config import DEFAULTS, read_settings
from .controls import AppControls
from .endpoints import make_endpoint
from .forks import AfterFork
from .format_registry import UserRender, check_format_clashes, user_format
from .hooks import put_probes_first
from .sections import check_section_clash, make_section
from .services import Service
from .state import EXTENSION_KEY, HealthCheckState, get_state
from .views import add_routes, make_blueprint

F = TypeVar("F", bound=Callable[..., Any])


# Registration and init_app here; running an app's checks in controls.py.
class HealthCheck(AppControls):
    """Health endpoints for Flask apps.

    :param app: the app to set up now; or call :meth:`init_app` later.
    :param services: names of services to build on every run, each a check
        of that name; an entry may be a dict with the check's options,
        ``{"name": "cursor_backend", "tags": ["ready"], "timeout": 2,
        "critical": True}``. Overrides ``HEALTHCHECK_SERVICES``.
    :param callable: one more check, its parameters injected by name. Its
        return value counts by its truth, as in clearskies: ``None`` fails;
        a ``(bool, message)`` tuple counts by the bool. Any callable works;
        one without a ``__name__`` of its own is the check ``callable``.
        Overrides ``HEALTHCHECK_CALLABLE``.
    :param url: the path of the endpoint. Overrides ``HEALTHCHECK_URL``.

    Checks and services registered on this object serve every app it is
    initialised on; pass ``app=`` to register for one app only.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        services: list[str | dict[str, Any]] | None = None,
        callable: Callable[..., Any] | None = None,  # noqa: A002 - clearskies' name
        url: str | None = None,
    ) -> None:
        self._registry = Registry()
        #: The apps initialised so far, held weakly (as Flask-SQLAlchemy holds
        #: its engines), so that an endpoint added after ``init_app`` reaches
        #: their URL maps without this object keeping any app alive.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        self._overrides: dict[str, Any] = {
            "HEALTHCHECK_SERVICES": services,
            "HEALTHCHECK_CALLABLE": callable,
            "HEALTHCHECK_URL": url,
        }
        # Fail fast on bad arguments, a callable that can't work included.
        settings = read_settings({**DEFAULTS}, self._overrides)
        if settings.callable is not None:
            callable_check(settings.callable)
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up ``app``: config defaults, per-app state and the blueprint.

        Sets the default of every ``HEALTHCHECK_*`` key and reads them all
        (:doc:`/configuration` lists each, with its default); set them
        before calling it. A bad value, or two endpoints with one URL, raises
        :class:`ConfigurationError` naming the key.

        Also adds the ``flask health`` command to ``app.cli``.

        :param app: the app to set up; once per app.
        :raises RuntimeError: if the app is set up already.
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
        register_app_secrets(app)
        # The ready-made services, passed to each app's state; importing them
        # also registers their fork hooks (``forks.on_fork``), so before any
        # fork of a set-up app. Imported here, not at the top, for start-up
        # cost (issue 20). Only the extension knows contrib: the state and
        # everything below it never import it.
        from . import contrib

        state = HealthCheckState(app, settings, self._registry, contrib.services())
        state.check_clashes()
        app.register_blueprint(make_blueprint(state.endpoints()))
        own_hooks: list[Callable[[], None]] = []
        if settings.interval > 0:
            # The refresh starts with the app's first request of any kind, in
            # the process that serves it (a pre-fork server's worker), before
            # any hook of the app can answer that request.
            own_hooks.append(state.refresher.start_unless_stopped)
        # Health URLs (errors under them included) are answered before the
        # app's own before_request hooks, unless HEALTHCHECK_RUN_APP_HOOKS.
        put_probes_first(app, own_hooks, run_app_hooks=settings.run_app_hooks)
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

        Use it bare (the service is named after the function) or with a
        name. A generator factory is resumed after the check to tear down,
        also when the check failed; what the teardown raises fails the
        check::

            @health.service("database")
            def database(config):
                conn = connect(config["DATABASE_URL"])
                yield conn
                conn.close()

        :param name: the name checks and other factories ask for it by; a
            Python identifier other than ``app`` and ``config``.
        :param app: register for this app only, instead of for every app
            this extension is initialised on.
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
        """Register ``factory`` as service ``name``; see :meth:`service`.

        :param name: the name checks and other factories ask for it by.
        :param factory: a function, generator function, async function or
            async generator function; its parameters are injected by name.
        :param app: register for this app only.
        """
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
        """Register a check, bare (``@health.check``) or with options.

        It passes when it returns True or None and fails when it returns
        False or raises (``BaseException`` included); a ``(bool, message)``
        tuple counts by the bool, the message being the error; a returned
        :class:`CheckResult` is taken as it is; anything else counts by its
        truth. Its parameters are injected by name from the services and
        the built-ins ``app`` and ``config``.

        :param func: the check, when used bare.
        :param name: the check's name, in URLs, reports and signals; the
            function's name by default. A callable without ``__name__``
            (``functools.partial``, a callable object) needs it.
        :param timeout: seconds after which the check is reported failed;
            ``HEALTHCHECK_TIMEOUT`` by default.
        :param critical: False to make a failure a ``warn``, which still
            answers 200.
        :param tags: the tags that endpoints select checks by, such as
            ``["ready"]``.
        :param component_type: health+json's ``componentType``, such as
            ``"datastore"``.
        :param app: register for this app only.
        :raises ConfigurationError: for a name that is taken, reserved
            (``history``, ``openapi.json``) or missing, or a bad option.
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
        """Register ``func`` as a check; the parameters are those of
        :meth:`check`."""
        check = make_check(
            func,
            name,
            timeout=timeout,
            critical=critical,
            tags=tags,
            component_type=component_type,
        )
        for target in self._apps_for(app):
            get_state(target).check_clashes(check=check)
        self._registry_for(app).add_check(check)

    def add_section(
        self, name: str, func: Callable[..., Any], *, app: Flask | None = None
    ) -> None:
        """Show what ``func`` returns as the section ``name`` of the formats
        with details (health+json, the status page, ``text/plain``), as
        py-healthcheck's ``add_section`` does; never in the clearskies envelope,
        and only where ``HEALTHCHECK_SHOW_DETAILS`` allows::

            health.add_section("build", lambda: {"commit": COMMIT})

        It runs on each request that shows it, in an app context, its
        parameters injected by name like a check's, for at most
        ``HEALTHCHECK_TIMEOUT`` (a section still running is not started
        again). Its value is redacted and bounded; what it raises is shown,
        redacted, as its value, and logged.

        :param name: its key; not one of health+json's own fields
            (``status``, ``checks``, ``version``, ...) nor another section's.
        :param func: returns the value: JSON-like data, or anything else,
            shown as its text.
        :param app: register for this app only.
        :raises ConfigurationError: for a bad or taken name, or a ``func``
            that isn't callable.
        """
        section = make_section(name, func)
        for target in self._apps_for(app):
            state = get_state(target)
            check_section_clash(section, state.shared.sections, state.own.sections)
        self._registry_for(app).add_section(section)

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
        :param app: add it for this app only.
        """
        endpoint = make_endpoint(url, tags)
        apps = self._apps_for(app)
        for target in apps:
            get_state(target).check_clashes(endpoint=endpoint)
        self._registry_for(app).add_endpoint(endpoint)
        for target in apps:
            add_routes(target, endpoint)

    def add_format(
        self,
        mimetype: str,
        render: UserRender,
        name: str | None = None,
        *,
        app: Flask | None = None,
    ) -> None:
        """Answer in ``mimetype`` too, on every health URL, when ``Accept``
        prefers it or ``?format=<name>`` asks for it::

            def to_csv(report, details):
                rows = [("health", report.status)]
                if details:
                    rows += [(r.name, r.error or r.status) for r in report.checks]
                out = io.StringIO()
                csv.writer(out).writerows(rows)
                return out.getvalue()

            health.add_format("text/csv", to_csv)  # ?format=csv

        A built-in format's media type replaces that format: the body is
        yours (py-healthcheck's ``success_handler``); ``*/*`` still gets
        ``application/json``, yours if you replaced it. Status codes,
        headers, HEAD and negotiation stay the extension's.

        :param mimetype: the media type, ``type/subtype`` without parameters.
        :param render: ``render(report, details)`` returning the body, ``str``
            (sent as UTF-8) or ``bytes``. Show per-check results only when
            ``details`` is True (``HEALTHCHECK_SHOW_DETAILS`` for this
            request). The report's errors and observed values are redacted
            already. A refused request (400, 404, 405) comes as a failing
            report with a result per input error, and ``details`` True. If
            ``render`` raises or returns anything else, that is logged and
            the answer is the clearskies envelope, with the same status.
        :param name: the ``?format=`` name: letters, digits, ``.``, ``+``,
            ``-``. By default the replaced format's, else the subtype
            (``csv`` for ``text/csv``).
        :param app: add it for this app only.
        :raises ConfigurationError: for a bad argument, a media type or
            name added already, or a built-in format's name.
        """
        format = user_format(mimetype, render, name)
        for target in self._apps_for(app):
            own = get_state(target).own.formats.values()
            check_format_clashes(format, [*self._registry.formats.values(), *own])
        self._registry_for(app).add_format(format)

    @overload
    def after_fork(self, func: F) -> F: ...

    @overload
    def after_fork(self, *, app: Flask | None = None) -> Callable[[F], F]: ...

    def after_fork(
        self, func: F | None = None, *, app: Flask | None = None
    ) -> F | Callable[[F], F]:
        """Register a function to call in each forked child process, once
        per app, in its context, before anything of the app runs there: to
        let go of connections pooled before the fork (``app`` and ``config``
        injected by name; what it raises is logged)::

            @health.after_fork
            def new_connections(app):
                engine.dispose(close=False)  # the parent's stay open

        :param app: for this app only.
        """

        def decorator(f: F) -> F:
            self._registry_for(app).after_fork.append(AfterFork(f))
            return f

        return decorator(func) if func is not None else decorator

    def _registry_for(self, app: Flask | None) -> Registry:
        return self._registry if app is None else get_state(app).own

    def _apps_for(self, app: Flask | None) -> list[Flask]:
        """That app, or every app set up so far (a copy: the set is weak)."""
        return [app] if app is not None else list(self._apps)
