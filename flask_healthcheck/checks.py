"""What a check is, what one run of it gives, and what a whole run gives."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .config import validate_timeout
from .endpoints import check_reserved_name, describe
from .errors import ConfigurationError

Status = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check in one run.

    A check may return one to say more than pass or fail, for example
    ``CheckResult(status="warn", error="disk 91% full", observed_value=91,
    observed_unit="%")``; the runner fills in ``name``, ``duration`` and
    ``tags``.

    .. versionadded:: 0.1.0
    """

    #: The check's name.
    name: str = ""
    #: ``"pass"``, ``"warn"`` or ``"fail"``.
    status: Status = "pass"
    #: Seconds the check took (the timeout, for one that timed out).
    duration: float = 0.0
    #: Why it did not pass: the exception type and a message with credentials
    #: redacted, safe to show. ``None`` when it passed.
    error: str | None = None
    #: The check's tags, which select it for tagged endpoints.
    tags: frozenset[str] = frozenset()
    #: A value the check observed (a latency, free bytes); shown with details.
    observed_value: Any = None
    #: The unit of ``observed_value``.
    observed_unit: str | None = None
    #: False for a check whose failure only makes the report ``"warn"``.
    critical: bool = True
    #: Unix time at which the check started.
    started_at: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"CheckResult status must be one of {', '.join(STATUSES)},"
                f" got {self.status!r}."
            )


@dataclass(frozen=True)
class HealthReport:
    """The outcome of one run: every selected check's result.

    .. versionadded:: 0.1.0
    """

    #: ``"fail"`` if a critical check failed, ``"warn"`` if a check warned or a
    #: non-critical one failed, else ``"pass"``.
    status: Status
    #: One result per check, in registration order. A tuple: one report is
    #: shared by the requests, subscribers and threads that see it.
    checks: tuple[CheckResult, ...] = ()
    #: Unix time at which the run started.
    started_at: float = 0.0

    @property
    def healthy(self) -> bool:
        """True unless the report fails: ``"warn"`` still serves traffic."""
        return self.status != "fail"

    @classmethod
    def from_results(
        cls, results: Sequence[CheckResult], started_at: float | None = None
    ) -> HealthReport:
        return cls(
            status=overall_status(results),
            checks=tuple(results),
            started_at=time.time() if started_at is None else started_at,
        )


def overall_status(results: Iterable[CheckResult]) -> Status:
    status: Status = "pass"
    for result in results:
        if result.status == "fail" and result.critical:
            return "fail"
        if result.status != "pass":
            status = "warn"
    return status


@dataclass(frozen=True)
class Parameter:
    """A parameter that dependency injection fills by name."""

    name: str
    #: With a default, an unknown name is not an error: the default is used.
    optional: bool


def injected_parameters(func: Callable[..., Any]) -> tuple[Parameter, ...]:
    """The parameters of ``func`` that are filled by name.

    A callable whose signature can't be read (some built-in functions) is
    called with no arguments, as clearskies 1.x calls every callable.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return ()
    params = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.kind is param.POSITIONAL_ONLY and param.default is param.empty:
            raise ConfigurationError(
                f"{describe_callable(func)} has the positional-only parameter"
                f" {param.name!r}, which dependency injection can't fill by name."
            )
        if param.kind is param.POSITIONAL_ONLY:
            continue
        params.append(Parameter(param.name, param.default is not param.empty))
    return tuple(params)


def describe_callable(func: Callable[..., Any]) -> str:
    """``name()`` for a function, a short repr for anything else."""
    name = getattr(func, "__qualname__", None)
    if isinstance(name, str) and name:
        return f"{name}()"
    return describe(func)


#: How a check or factory is called: found once, at registration.
CallKind = Literal["plain", "generator", "async_generator"]


def call_kind(func: Callable[..., Any]) -> CallKind:
    if inspect.isgeneratorfunction(func):
        return "generator"
    if inspect.isasyncgenfunction(func):
        return "async_generator"
    return "plain"


@dataclass(frozen=True)
class Check:
    """A registered check: a function and how to run it."""

    name: str
    func: Callable[..., Any]
    #: Seconds; ``None`` means ``HEALTHCHECK_TIMEOUT``.
    timeout: float | None = None
    critical: bool = True
    tags: frozenset[str] = frozenset()
    #: The IETF health+json ``componentType`` (``"datastore"``, ...).
    component_type: str | None = None
    parameters: tuple[Parameter, ...] = ()
    kind: CallKind = "plain"
    #: True for the ``callable`` option, whose ``None`` fails as in
    #: clearskies; registered checks pass on ``None`` (they raise to fail).
    none_fails: bool = False


_PASSED = CheckResult(status="pass")
_RETURNED_FALSE = CheckResult(status="fail", error="check returned False")
_RETURNED_NONE = CheckResult(
    status="fail", error="the callable returned None (return True when healthy)"
)


def interpret(value: Any, *, none_fails: bool = False) -> CheckResult:
    """Turn what a check returned into a result (the runner adds the rest).

    A ``CheckResult`` is taken as it is. A ``(bool, message)`` tuple, as
    py-healthcheck checks return, counts by its bool, the message being the
    error when it fails (a tuple is always true, so counting it by its truth
    would pass ``(False, "db down")``). ``None`` passes, so that checks can
    simply raise, unless ``none_fails`` (the ``callable`` option, where a
    function that forgot to return fails, as in clearskies 1.x). Anything
    else counts by its truth.

    :param value: what the check returned.
    :param none_fails: whether ``None`` fails.
    """
    if isinstance(value, CheckResult):
        return value
    if value is None:
        return _RETURNED_NONE if none_fails else _PASSED
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        passed, message = value
        if passed:
            return _PASSED
        if message is None or message == "":
            return _RETURNED_FALSE
        return CheckResult(
            status="fail", error=message if isinstance(message, str) else repr(message)
        )
    if value:
        return _PASSED
    if value is False:
        return _RETURNED_FALSE
    return CheckResult(
        status="fail", error=f"check returned a false {type(value).__name__}"
    )


#: The name of the ``callable`` option's check, and of a lambda check, when
#: it has no name of its own (a lambda, ``functools.partial``, a callable
#: object, a mock).
ANONYMOUS_CHECK_NAME = "callable"


def _own_name(func: Callable[..., Any]) -> str | None:
    """``func.__name__`` if it is a usable name; None for a lambda or a
    callable without one."""
    name = getattr(func, "__name__", None)
    if not isinstance(name, str) or not name or name == "<lambda>":
        return None
    return name


def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigurationError(
            f"A check name must be a non-empty string without '/', got {name!r}."
        )
    return name


def make_check(
    func: Callable[..., Any],
    name: str | None = None,
    *,
    timeout: float | None = None,
    critical: bool = True,
    tags: Iterable[str] = (),
    component_type: str | None = None,
) -> Check:
    """Validate a check's options; errors name the check and the option.

    Without ``name`` the check is named after the function (a lambda is
    ``callable``); a callable that has no ``__name__`` (``functools.partial``,
    a callable object) needs ``name``.
    """
    if not callable(func):
        raise ConfigurationError(f"A check must be a function, got {func!r}.")
    if name is None:
        if getattr(func, "__name__", None) == "<lambda>":
            name = ANONYMOUS_CHECK_NAME
        else:
            name = _own_name(func)
        if name is None:
            raise ConfigurationError(
                f"The check {describe(func)} has no __name__ to name it by;"
                f" pass name='...'."
            )
    name = _validate_name(name)
    check_reserved_name(name)
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


def callable_check(func: Callable[..., Any]) -> Check:
    """The ``callable`` option (``HEALTHCHECK_CALLABLE``) as a check.

    It is named after the function, or ``callable`` when it has no name of
    its own (a lambda, ``functools.partial``, a callable object, a mock), and
    its ``None`` fails, as in clearskies 1.x. Raises
    :class:`ConfigurationError` for a callable that can't work, so that the
    mistake shows at ``init_app``, not at the first request.
    """
    name = _validate_name(_own_name(func) or ANONYMOUS_CHECK_NAME)
    return Check(
        name=name,
        func=func,
        parameters=injected_parameters(func),
        kind=call_kind(func),
        none_fails=True,
    )
