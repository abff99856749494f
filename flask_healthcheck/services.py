"""The service-factory map and dependency injection by parameter name.

A service is built afresh for every check that needs it and torn down
after that check: a health check must see an outage that starts after a
success, and a connection is never shared between the threads that run
checks concurrently.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
import time
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .checks import (
    CallKind,
    Check,
    CheckResult,
    Parameter,
    call_kind,
    injected_parameters,
)
from .config import ServiceCheckOptions
from .errors import ConfigurationError

logger = logging.getLogger("flask_healthcheck")

#: What every awaitable is an instance of (a generator-based coroutine is
#: a generator; every other awaitable, coroutines included, an Awaitable):
#: what isn't is not asked :func:`inspect.isawaitable`, which tests both.
_MAYBE_AWAITABLE = (types.GeneratorType, Awaitable)

#: Names every check and factory can ask for without registering them.
BUILTIN_NAMES = ("app", "config")


@dataclass(frozen=True)
class Observation:
    """A value a service factory measured while it was built."""

    value: Any
    unit: str | None = None


#: The scope calling a factory or check in this context, and the name of the
#: service being built (``None`` while the check itself runs).
_current: ContextVar[tuple[Scope, str | None] | None] = ContextVar(
    "flask_healthcheck_scope", default=None
)


def observe(value: Any, unit: str | None = None) -> None:
    """Report a value measured by the service factory being built.

    The check named after the service (``HEALTHCHECK_SERVICES``, or a
    service in ``services=[...]``) reports it as its observed value, so a
    factory that pings a server can report the latency without a check of
    its own::

        @health.service("cache")
        def cache(config):
            client = connect(config["CACHE_URL"])
            start = time.perf_counter()
            client.ping()
            observe((time.perf_counter() - start) * 1000, "ms")
            return client

    Calls outside a factory that a health run builds (a check, or the
    factory called by the app itself) are ignored, so a factory can be
    shared with app code.

    :param value: what was measured, such as a latency or free bytes.
    :param unit: the unit of ``value``, such as ``"ms"`` or ``"bytes"``.

    .. versionadded:: 0.1.0
    """
    current = _current.get()
    if current is not None:
        scope, name = current
        if name is not None:
            scope.observations[name] = Observation(value, unit)


def observation(name: str) -> Observation | None:
    """What service ``name`` observed while built for the check being run."""
    current = _current.get()
    return None if current is None else current[0].observations.get(name)


def time_left() -> float | None:
    """Seconds before the check being run times out, or None outside one.

    Factories and checks use it to give every network call a timeout below
    the check's own: a call that gives up by itself frees its thread and
    reports a precise error, where one abandoned at the timeout keeps its
    thread until the call returns, and the check is not run again until then.

    .. versionadded:: 0.1.0
    """
    current = _current.get()
    if current is None or current[0].deadline is None:
        return None
    return max(0.0, current[0].deadline - time.monotonic())


@dataclass(frozen=True)
class Service:
    """A registered factory and the parameters it wants injected."""

    name: str
    factory: Callable[..., Any]
    parameters: tuple[Parameter, ...]
    kind: CallKind = "plain"

    @classmethod
    def from_factory(cls, name: str, factory: Callable[..., Any]) -> Service:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigurationError(
                f"A service name must be a Python identifier (it is injected by"
                f" parameter name), got {name!r}."
            )
        if name in BUILTIN_NAMES:
            raise ConfigurationError(
                f"The service name {name!r} is built in"
                f" ({', '.join(BUILTIN_NAMES)}); choose another name."
            )
        if not callable(factory):
            raise ConfigurationError(
                f"The factory of service {name!r} must be callable, got {factory!r}."
            )
        return cls(name, factory, injected_parameters(factory), call_kind(factory))


def check_dependencies(
    owner: str,
    parameters: tuple[Parameter, ...],
    services: Mapping[str, Service],
    service: str | None = None,
) -> None:
    """Raise :class:`ConfigurationError` for an unknown name or a cycle.

    ``owner`` describes who asks (``"check 'db'"``), ``service`` its name if
    it is a service; the message names the whole chain so the fix is obvious.
    """

    def visit(params: tuple[Parameter, ...], chain: tuple[str, ...]) -> None:
        for param in params:
            if param.name in BUILTIN_NAMES:
                continue
            found = services.get(param.name)
            if found is None:
                if param.optional:
                    continue
                asked = chain[1:] if service else chain
                path = " -> ".join((owner, *(f"service {n!r}" for n in asked)))
                names = sorted((*BUILTIN_NAMES, *services))
                close = difflib.get_close_matches(param.name, names, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(
                    f"{path} needs {param.name!r}, which is not a registered"
                    f" service.{hint} Register it with"
                    f" @health.service({param.name!r}) or health.add_service();"
                    f" known names: {', '.join(names)}."
                )
            if param.name in chain:
                cycle = " -> ".join((*chain[chain.index(param.name) :], param.name))
                raise ConfigurationError(
                    f"{owner} depends on a cycle of services: {cycle}."
                )
            visit(found.parameters, (*chain, param.name))

    visit(parameters, (service,) if service else ())


class Scope:
    """The services built for one check, torn down together when it ends.

    Generator factories are resumed after the check (also when it failed),
    like pytest fixtures; async factories and async checks run on the app's
    event loop (:mod:`~flask_healthcheck.event_loop`), one for the app's
    life, so async clients made at import or on an earlier run keep working.
    """

    def __init__(
        self,
        app: Flask,
        services: Mapping[str, Service],
        *,
        deadline: float | None = None,
    ) -> None:
        self.app = app
        self.services = services
        #: ``time.monotonic()`` at which the check times out, for :func:`time_left`.
        self.deadline = deadline
        #: What the factories built here reported with :func:`observe`, by name.
        self.observations: dict[str, Observation] = {}
        self._built: dict[str, Any] = {"app": app, "config": app.config}
        self._stack: contextlib.ExitStack | None = None
        #: Seconds the check had at the start: what an async teardown gets.
        self._budget = None if deadline is None else deadline - time.monotonic()

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()

    def run_async(self, awaitable: Any, deadline: float | None = None) -> Any:
        """Await ``awaitable`` on the app's loop, cancelled at ``deadline``
        (the check's by default)."""
        # Imported here, not at the top, for start-up cost (issue 20): only
        # apps with async checks or services pay for asyncio.
        from .event_loop import loop_for

        return loop_for(self.app).run(
            awaitable, self.deadline if deadline is None else deadline
        )

    def arguments(self, parameters: tuple[Parameter, ...]) -> dict[str, Any]:
        """Keyword arguments for a function, building what it needs."""
        kwargs = {}
        for param in parameters:
            if param.name in self._built or param.name in self.services:
                kwargs[param.name] = self.get(param.name)
            elif not param.optional:
                raise ConfigurationError(f"No service is registered as {param.name!r}.")
        return kwargs

    def get(self, name: str) -> Any:
        if name not in self._built:
            service = self.services[name]
            arguments = self.arguments(service.parameters)
            value = self.call(service.factory, service.kind, arguments, service=name)
            self._built[name] = value
        return self._built[name]

    def call(
        self,
        func: Callable[..., Any],
        kind: CallKind,
        kwargs: dict[str, Any],
        *,
        service: str | None = None,
    ) -> Any:
        """Call a factory or check, sync or async, entering generators.

        :param service: the name of the service ``func`` builds, under which
            :func:`observe` records; None for a check.
        """
        token = _current.set((self, service))
        try:
            return self._call(func, kind, kwargs)
        finally:
            _current.reset(token)

    def call_plain(self, func: Callable[..., Any], deadline: float) -> Any:
        """Call ``func``, a check without parameters that is no generator,
        in this scope, current already (see :func:`thread_scope`), with
        ``deadline`` for :func:`time_left` while it runs."""
        self.deadline = deadline
        try:
            value = func()
        finally:
            self.deadline = None
        # inspect.isawaitable asked only of what may be awaitable: one
        # isinstance, for every check of every run.
        if isinstance(value, _MAYBE_AWAITABLE) and inspect.isawaitable(value):
            # Awaited on the app's loop, it may outlive its check (cancelled
            # at the deadline): a scope of its own, which no later check
            # changes.
            scope = Scope(self.app, self.services, deadline=deadline)
            return scope.call(lambda: value, "plain", {})
        return value

    def _call(
        self, func: Callable[..., Any], kind: CallKind, kwargs: dict[str, Any]
    ) -> Any:
        if kind == "generator":
            return self._teardowns().enter_context(_teardown_generator(func(**kwargs)))
        if kind == "async_generator":
            agen = func(**kwargs)
            value = self.run_async(agen.__anext__())
            self._teardowns().callback(self._finish_async_generator, agen)
            return value
        value = func(**kwargs)
        if inspect.isawaitable(value):
            value = self.run_async(value)
        return value

    def _teardowns(self) -> contextlib.ExitStack:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
        return self._stack

    def _finish_async_generator(self, agen: Any) -> None:
        """Resume ``agen`` past its ``yield``, even after the check timed
        out (a teardown cancelled at the check's deadline would leave the
        connection it closes open): it gets the check's timeout afresh, and
        is cancelled after that (one that hangs would keep the check
        "still running" for good)."""
        deadline = self.deadline
        if deadline is not None and self._budget is not None:
            deadline = max(deadline, time.monotonic() + self._budget)
        try:
            self.run_async(agen.__anext__(), deadline)
        except StopAsyncIteration:
            return
        logger.warning("Service factory %r yielded more than once.", agen)


def thread_scope(app: Flask) -> Scope:
    """A scope made current in the context a thread runs its checks in,
    once for the thread's life: a check that takes no parameters and is no
    generator builds nothing, so it is called in this one (its deadline set,
    see :meth:`Scope.call_plain`) rather than in a scope of its own."""
    scope = Scope(app, {})
    _current.set((scope, None))
    return scope


@contextlib.contextmanager
def _teardown_generator(gen: Iterator[Any]) -> Iterator[Any]:
    value = next(gen)
    try:
        yield value
    finally:
        try:
            next(gen)
        except StopIteration:
            pass
        else:
            logger.warning("Service factory %r yielded more than once.", gen)


def _build_only(**services: Any) -> CheckResult | None:
    """Building the services (done before the call) is the whole check.

    What the service reported with :func:`observe` while it was built (a
    ping's latency, free bytes) is the observed value.
    """
    for name in services:
        seen = observation(name)
        if seen is not None:
            return CheckResult(observed_value=seen.value, observed_unit=seen.unit)
    return None


def service_check(service: str | ServiceCheckOptions) -> Check:
    """The ``services`` option: a check that builds one service.

    :param service: the service's name, or its entry of
        ``HEALTHCHECK_SERVICES`` with the check's tags, timeout and
        ``critical``.
    """
    if isinstance(service, str):
        service = ServiceCheckOptions(service)
    name = service.name
    return Check(
        name=name,
        func=_build_only,
        timeout=service.timeout,
        critical=service.critical,
        tags=service.tags,
        parameters=(Parameter(name, False),),
    )
