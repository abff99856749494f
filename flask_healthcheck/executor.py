"""Running checks: each in the app's context, with its services, then the
app's teardown, one after another on whatever thread the scheduler chose.

Whatever the check, a factory or a teardown does (``SystemExit`` included),
and however long it takes, is that check's result: the executor never
raises.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask.ctx import AppContext
from flask.signals import appcontext_tearing_down

from .app_secrets import config_secrets
from .checks import Check, CheckResult, interpret
from .redact import describe_exception, redact, redact_value
from .reentry import inside
from .services import Scope, Service, thread_scope
from .threads import local

if TYPE_CHECKING:
    from .execution import Execution

#: Takes the result of an execution, and what its check raised.
Finish = Callable[["Execution", CheckResult, "BaseException | None"], None]

#: Added to greenlet's "Cannot switch to a different thread".
_GEVENT_HINT = (
    " (under gevent, checks run on threads of their own: a client whose"
    " connection was made on another thread, such as one shared with the"
    " app, can't be used there; make it in a service factory)"
)


class Executor:
    """Runs the checks of one app. Thread-safe; one per app.

    The app's service map is handed down (:attr:`services`), set by the
    state once its checks are validated: the executor never asks up for it.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        #: What checks' parameters are injected from.
        self.services: Mapping[str, Service] = {}
        #: Per thread: the app context pushed for the thread's life.
        self._thread_state = local()

    def execute(
        self, executions: Iterable[Execution], finish: Finish, *, inline: bool = False
    ) -> None:
        """Run the check of each of ``executions`` in turn, then the app's
        teardown, and hand ``finish`` its result and what it raised (for the
        log's traceback) as it ends; never raises. Each check's deadline
        (``time.monotonic()``) is handed to the services that can give up
        by themselves.

        One call runs a thread's share of a run: its checks are called in a
        loop in this thread's context for the app, not each through the
        layers to it (see :meth:`_app_context`).

        :param inline: True on a thread that is not the scheduler's (a
            request's, with its own app context), as for :meth:`call`.
        """
        if not inline:
            self._execute(executions, finish)
            return
        state = self._thread_state
        if getattr(state, "busy", False):
            # A check that runs the checks: see _call_inline.
            for execution in executions:
                check, deadline = execution.check, execution.deadline
                finish(execution, *self._execute_pushed(check, deadline))
            return
        state.busy = True
        try:
            self._execute(executions, finish)
        finally:
            state.busy = False

    def _execute(self, executions: Iterable[Execution], finish: Finish) -> None:
        context, app_context, scope = self._app_context()
        context.run(self._execute_in_context, executions, finish, app_context, scope)

    def _execute_in_context(
        self,
        executions: Iterable[Execution],
        finish: Finish,
        context: AppContext,
        shared: Scope,
    ) -> None:
        """The loop of :meth:`execute`, in this thread's context for the app:
        per check, what :meth:`_call_in_context` and :meth:`_result` do
        (Flask's own teardown only when it would do something), written out
        here, with what is the same for every check read once (this runs for
        every check of every run; a call costs more than most of the steps
        it would wrap). A change to either must be made here too."""
        app = self.app
        perf_counter = time.perf_counter
        set_inside = inside.set
        call_plain = shared.call_plain
        secrets = self._secrets
        # Flask's own teardown does nothing without teardown functions or
        # receivers of its signal (benchmarks/tweaks.py): it is called when
        # it has either, and always when the app has a teardown of its own.
        teardown = app.do_teardown_appcontext
        own_teardown = not _flasks_own(getattr(teardown, "__func__", None))
        new_g = app.app_ctx_globals_class
        new_result, set_fields = object.__new__, object.__setattr__
        # Unix time read from the performance counter: one clock a check.
        wall = time.time() - perf_counter()
        for execution in executions:
            check = execution.check
            start = perf_counter()
            try:
                # A health run the check asks for answers from the latest results.
                set_inside(("check", check.name))
                try:
                    if not check.parameters and check.kind == "plain":
                        # It builds no service: the thread's scope will do.
                        value = call_plain(check.func, execution.deadline)
                    else:
                        value = self._call_scoped(check, execution.deadline)
                finally:
                    try:
                        # What popping the context would do: the app's teardown.
                        if (
                            own_teardown
                            or app.teardown_appcontext_funcs
                            or appcontext_tearing_down.receivers
                        ):
                            teardown(sys.exc_info()[1])
                    finally:
                        context.g = new_g()
                # The result, as _result makes it (and _completed).
                outcome = interpret(value, none_fails=check.none_fails)
                error = outcome.error
                fields = {
                    "name": check.name,
                    "duration": perf_counter() - start,
                    "error": redact(error, secrets()) if error else error,
                    "observed_value": redact_value(outcome.observed_value),
                    "observed_unit": redact_value(outcome.observed_unit),
                    "tags": check.tags,
                    "critical": check.critical,
                    "started_at": wall + start,
                }
                if type(outcome) is CheckResult:
                    fields["status"] = outcome.status
                    result = new_result(CheckResult)
                    set_fields(result, "__dict__", fields)
                else:
                    result = replace(outcome, **fields)
            except BaseException as e:  # SystemExit in a check must not end a worker
                finish(execution, self._failure(check, e, start, wall + start), e)
            else:
                finish(execution, result, None)

    def _execute_pushed(
        self, check: Check, deadline: float
    ) -> tuple[CheckResult, BaseException | None]:
        """Run ``check`` in an app context of its own (see
        :meth:`_call_pushed`): its result, and what it raised."""
        started_at = time.time()
        start = time.perf_counter()
        try:
            value = self._call_pushed(check, deadline)
            return self._result(check, value, start, started_at), None
        except BaseException as e:  # SystemExit in a check must not end a worker
            return self._failure(check, e, start, started_at), e

    def _result(
        self, check: Check, value: object, start: float, started_at: float
    ) -> CheckResult:
        """The result of ``check``, which returned ``value``, started at
        ``start`` (``time.perf_counter()``) and ``started_at`` (Unix time).
        :meth:`_execute_in_context` makes it written out: change both."""
        outcome = interpret(value, none_fails=check.none_fails)
        # Text is made here, on the check's time: a value whose __str__
        # is slow or raises must not hold up or break a response later.
        fields = {
            "name": check.name,
            "duration": time.perf_counter() - start,
            "error": self._redact(outcome.error),
            "observed_value": redact_value(outcome.observed_value),
            "observed_unit": redact_value(outcome.observed_unit),
            "tags": check.tags,
            "critical": check.critical,
            "started_at": started_at,
        }
        return _completed(outcome, fields)

    def _failure(
        self, check: Check, error: BaseException, start: float, started_at: float
    ) -> CheckResult:
        """The failed result of ``check``, which raised ``error`` (or whose
        result could not be made)."""
        try:
            reason = self._describe(error)
            return failure(check, reason, time.perf_counter() - start, started_at)
        except BaseException:  # even the failure could not be made
            return failure(check, "the check's result was lost", 0.0, started_at)

    def call(self, check: Check, deadline: float, *, inline: bool = False) -> object:
        """Call ``check``'s function with its services, then the app's
        teardown: what it returned; raises what it (or they) raised. Also
        how sections are called (see :mod:`~flask_healthcheck.sections`).

        :param inline: True on a thread that is not the scheduler's (a
            request's, with its own app context): the check gets an app
            context of its own, popped after it."""
        if inline:
            return self._call_inline(check, deadline)
        return self._call(check, deadline)

    def _call(self, check: Check, deadline: float) -> object:
        """Call the check with its services, then the app's teardown, in
        this thread's context for the app (see :meth:`_app_context`)."""
        context, app_context, scope = self._app_context()
        return context.run(self._call_in_context, check, deadline, app_context, scope)

    def _call_in_context(
        self, check: Check, deadline: float, context: AppContext, shared: Scope
    ) -> object:
        # A health run the check asks for answers from the latest results.
        inside.set(("check", check.name))
        try:
            if not check.parameters and check.kind == "plain":
                # It builds no service: the thread's scope will do.
                return shared.call_plain(check.func, deadline)
            return self._call_scoped(check, deadline)
        finally:
            try:
                # What popping the context would do: the app's teardown.
                self.app.do_teardown_appcontext(sys.exc_info()[1])
            finally:
                context.g = self.app.app_ctx_globals_class()

    def _call_scoped(self, check: Check, deadline: float) -> object:
        """Call the check with the services it asks for, in a scope of its
        own (torn down after it), in the current app context."""
        with Scope(self.app, self.services, deadline=deadline) as scope:
            return scope.call(check.func, check.kind, scope.arguments(check.parameters))

    def _call_inline(self, check: Check, deadline: float) -> object:
        """Call the check on this (a request's) thread, in this thread's
        context for the app, as on a pool thread: pushing and popping an
        app context per check cost a third of a trivial check. A call that
        finds that context in use, by a check that runs the checks (or, under
        gevent, by another greenlet's check on this thread), gets an app
        context of its own instead."""
        state = self._thread_state
        if getattr(state, "busy", False):
            return self._call_pushed(check, deadline)
        state.busy = True
        try:
            return self._call(check, deadline)
        finally:
            state.busy = False

    def _call_pushed(self, check: Check, deadline: float) -> object:
        """Call the check with its services in a new app context; popping it
        runs the app's teardown."""
        token = inside.set(("check", check.name))
        try:
            with self.app.app_context():
                with Scope(self.app, self.services, deadline=deadline) as scope:
                    return scope.call(
                        check.func, check.kind, scope.arguments(check.parameters)
                    )
        finally:
            inside.reset(token)

    def _app_context(self) -> tuple[contextvars.Context, AppContext, Scope]:
        """The app context of this thread, pushed once for the thread's
        life: pushing one per check costs more than a quick check. Each
        check still gets a fresh ``g`` and the app's teardown after it. The
        services scope made current in it with the context serves the
        checks that build no service (see :func:`.thread_scope`).

        It is pushed in an empty :class:`contextvars.Context` kept by this
        executor, not in the thread's own: an idle pool thread then holds
        nothing of the app, which a test suite can drop and collect, and a
        request thread's own context (its request, its ``g``) is neither
        seen nor changed by the checks it runs inline."""
        contexts: tuple[contextvars.Context, AppContext, Scope] | None = getattr(
            self._thread_state, "contexts", None
        )
        if contexts is None:
            app_context = self.app.app_context()
            context = contextvars.Context()
            context.run(app_context.push)
            scope = context.run(thread_scope, self.app)
            contexts = self._thread_state.contexts = (context, app_context, scope)
        return contexts

    def _redact(self, error: str | None) -> str | None:
        # A message the check wrote itself may quote a secret.
        return redact(error, self._secrets()) if error else error

    def _describe(self, error: BaseException) -> str:
        try:
            reason = describe_exception(error, self._secrets())
            if type(error).__module__ == "greenlet" and "thread" in reason:
                reason += _GEVENT_HINT
            return reason
        except BaseException:  # an exception whose ``__str__`` raises
            return f"{type(error).__name__} (its message could not be read)"

    def _secrets(self) -> frozenset[str]:
        return config_secrets(self.app.config)


def _flasks_own(func: object) -> bool:
    """Whether ``func`` is Flask's own ``do_teardown_appcontext``: not an
    override, nor a function an agent put on the class in its place (with
    ``functools.wraps`` it has Flask's names, but not Flask's module)."""
    if func is not Flask.do_teardown_appcontext:
        return False
    globals_: dict[str, Any] = getattr(func, "__globals__", {})
    return globals_.get("__name__") == Flask.__module__


def _completed(outcome: CheckResult, fields: dict[str, Any]) -> CheckResult:
    """``outcome`` with ``fields``, every field of a result but its status:
    ``dataclasses.replace`` without its per-field checks (``outcome`` is
    valid already) and without copying what ``fields`` replaces; this runs
    for every check of every run (benchmarks/tweaks.py). A subclass of
    CheckResult, which may need its own ``__init__``, gets ``replace``."""
    if type(outcome) is not CheckResult:
        return replace(outcome, **fields)
    fields["status"] = outcome.status
    result = object.__new__(CheckResult)
    object.__setattr__(result, "__dict__", fields)
    return result


def failure(
    check: Check, reason: str, duration: float, started_at: float
) -> CheckResult:
    """A failed result of ``check`` for ``reason``, made by the runner (a
    timeout, no thread) as well as for what a check raised."""
    return CheckResult(
        name=check.name,
        status="fail",
        duration=duration,
        error=reason,
        tags=check.tags,
        critical=check.critical,
        started_at=started_at,
    )
