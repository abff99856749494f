"""The service-factory map and dependency injection by parameter name.

A service is built afresh for every check that needs it and torn down
after that check: a health check must see an outage that starts after a
success, and a connection is never shared between the threads that run
checks concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .checks import CallKind, Parameter, call_kind, injected_parameters
from .errors import ConfigurationError

logger = logging.getLogger("flask_healthcheck")

#: What most checks return: answers that need no look for an awaitable.
_NOT_AWAITABLE = frozenset({bool, type(None)})

#: Names every check and factory can ask for without registering them.
BUILTIN_NAMES = ("app", "config")


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
            service = services.get(param.name)
            if service is None:
                if param.optional:
                    continue
                asked = chain[1:] if service else chain
                path = " -> ".join((owner, *(f"service {n!r}" for n in asked)))
                known = ", ".join(sorted((*BUILTIN_NAMES, *services)))
                raise ConfigurationError(
                    f"{path} needs {param.name!r}, which is not a registered"
                    f" service. Register it with @health.service({param.name!r})"
                    f" or health.add_service(); known names: {known}."
                )
            if param.name in chain:
                cycle = " -> ".join((*chain[chain.index(param.name) :], param.name))
                raise ConfigurationError(
                    f"{owner} depends on a cycle of services: {cycle}."
                )
            visit(service.parameters, (*chain, param.name))

    visit(parameters, (service,) if service else ())


class Scope:
    """The services built for one check, torn down together when it ends.

    Generator factories are resumed after the check (also when it failed),
    like pytest fixtures; async factories and async checks run on an event
    loop owned by the scope.
    """

    def __init__(self, app: Flask, services: Mapping[str, Service]) -> None:
        self.app = app
        self.services = services
        self._built: dict[str, Any] = {"app": app, "config": app.config}
        self._stack: contextlib.ExitStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Scope:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._stack is not None:
                self._stack.close()
        finally:
            if self._loop is not None:
                self._loop.close()
                self._loop = None

    def run_async(self, awaitable: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

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
            value = self.call(
                service.factory, service.kind, self.arguments(service.parameters)
            )
            self._built[name] = value
        return self._built[name]

    def call(
        self, func: Callable[..., Any], kind: CallKind, kwargs: dict[str, Any]
    ) -> Any:
        """Call a factory or check, sync or async, entering generators."""
        if kind == "generator":
            return self._teardowns().enter_context(_teardown_generator(func(**kwargs)))
        if kind == "async_generator":
            agen = func(**kwargs)
            value = self.run_async(agen.__anext__())
            self._teardowns().callback(self._finish_async_generator, agen)
            return value
        value = func(**kwargs)
        if value.__class__ not in _NOT_AWAITABLE and inspect.isawaitable(value):
            value = self.run_async(value)
        return value

    def _teardowns(self) -> contextlib.ExitStack:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
        return self._stack

    def _finish_async_generator(self, agen: Any) -> None:
        try:
            self.run_async(agen.__anext__())
        except StopAsyncIteration:
            return
        logger.warning("Service factory %r yielded more than once.", agen)


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
