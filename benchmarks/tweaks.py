"""What each speed tweak is worth today (issue 19): the probe it speeds up,
timed with the tweak and with the plain code patched in, in one run.

    python benchmarks/tweaks.py             # about 1 minute
    python benchmarks/tweaks.py --quick

Rounds alternate (tweak, plain, tweak, plain, ...), each the median of a
batch of probes through Flask's test client after a warm-up; the figure is
the median over rounds of ``1 - tweak / plain``: the share of the probe the
tweak saves. A tweak is worth keeping above 10 % where it counts most.
Each is timed inline, where no thread hand-off hides it (the pool thread's
own on pool threads): the per-request shortcuts on one check, the
per-check ones on 20 and 1,000. For a tweak kept, the plain code is patched
in; for one removed, the tweak as it was.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import flask
from flask import Request
from flask.signals import appcontext_tearing_down

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from scale import build_ours  # noqa: E402 - benchmarks/ is sys.path[0]

from flask_healthcheck import executor, views  # noqa: E402
from flask_healthcheck.checks import CheckResult  # noqa: E402
from flask_healthcheck.executor import Executor  # noqa: E402
from flask_healthcheck.format_registry import FormatRegistry  # noqa: E402
from flask_healthcheck.formats import Format  # noqa: E402
from flask_healthcheck.history import History  # noqa: E402
from flask_healthcheck.redact import redact_value  # noqa: E402
from flask_healthcheck.reentry import inside  # noqa: E402
from flask_healthcheck.services import Scope  # noqa: E402


@contextmanager
def patched(owner: object, name: str, plain: object) -> Iterator[None]:
    """``owner.name`` is ``plain`` inside the block."""
    tweak = getattr(owner, name)
    setattr(owner, name, plain)
    try:
        yield
    finally:
        setattr(owner, name, tweak)


# ---------------------------------------------- the versions not in the code
# For a tweak kept, the plain code; for one removed, the tweak as it was.


def plain_completed(outcome: CheckResult, fields: dict[str, Any]) -> CheckResult:
    return replace(outcome, **fields)


def plain_call(
    self: Executor, check: Any, deadline: float, context: Any, shared: Any
) -> object:
    # An app context pushed and popped per check (its teardown, a fresh g).
    return self._call_pushed(check, deadline)


def tweaked_scope_call(
    self: Scope, func: Callable[..., Any], kind: Any, kwargs: dict[str, Any]
) -> Any:
    # Scope._call not asking a True or None whether it is awaitable.
    if kind in ("generator", "async_generator"):
        return _scope_call(self, func, kind, kwargs)
    value = func(**kwargs)
    if value is not True and value is not None and inspect.isawaitable(value):
        value = self.run_async(value)
    return value


_scope_call = Scope._call


def tweaked_add(
    self: History, series: Any, at: float, tick: float, status: Any, duration: float
) -> None:
    # History._add pruning only if the oldest entry is old enough.
    offset = self.offset
    series.add(at, status, duration, tick - at - offset, self.max_results)
    times = series.times
    if times and times[0] + offset + series.shifts[0][1] < tick - self.max_age:
        series.prune(tick - self.max_age, offset)


def tweaked_in_context(
    self: Executor, check: Any, deadline: float, context: Any, shared: Scope
) -> object:
    """``Executor._call_in_context`` with the teardown only if the app has
    one and a new ``g`` only if the check used it."""
    inside.set(("check", check.name))
    try:
        if not check.parameters and check.kind == "plain":
            return shared.call_plain(check.func, deadline)
        with Scope(self.app, self.services, deadline=deadline) as scope:
            return scope.call(check.func, check.kind, scope.arguments(check.parameters))
    finally:
        try:
            app = self.app
            if app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
                app.do_teardown_appcontext(sys.exc_info()[1])
        finally:
            if context.g.__dict__:
                context.g = self.app.app_ctx_globals_class()


def plain_in_context(
    self: Executor, check: Any, deadline: float, context: Any, shared: Any
) -> object:
    # A services scope of its own for every check, parameters or not.
    inside.set(("check", check.name))
    try:
        with Scope(self.app, self.services, deadline=deadline) as scope:
            return scope.call(check.func, check.kind, scope.arguments(check.parameters))
    finally:
        try:
            self.app.do_teardown_appcontext(sys.exc_info()[1])
        finally:
            context.g = self.app.app_ctx_globals_class()


def tweaked_shown(value: object) -> object:
    return value if value is None else redact_value(value)


_choose = FormatRegistry.choose
_negotiate = FormatRegistry.negotiate
_select = views.select


def tweaked_choose(self: FormatRegistry, request: Request) -> Format | None:
    if request.query_string:
        return _choose(self, request)
    return self.negotiate(request)


def tweaked_negotiate(self: FormatRegistry, request: Request) -> Format:
    if request.headers.get("Accept", "*/*") == "*/*":
        return self.default
    return _negotiate(self, request)


def plain_negotiate(self: FormatRegistry, request: Request) -> Format:
    """``FormatRegistry.negotiate`` without remembering each header's answer."""
    return self._best_match(request.accept_mimetypes)


def tweaked_select(state: Any, endpoint: Any, check: str | None, current: Any) -> Any:
    if check is None and not flask.request.query_string:
        return state.select(tags=endpoint.tags)
    return _select(state, endpoint, check, current)


#: What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass
class Tweak:
    name: str
    where: str
    probe: str
    threads: bool
    #: The probes it is timed on: how many checks.
    checks: tuple[int, ...]
    #: Whether the code has the tweak (else the plain code).
    kept: bool
    #: Puts the version that is not in the code in, for a block.
    other: Callable[[], AbstractContextManager[None]]
    #: The probes' ``Accept`` header, if they send one.
    accept: str | None = None


TWEAKS = (
    Tweak(
        "result built with `object.__new__`, not `dataclasses.replace`",
        "`executor._completed`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(executor, "_completed", plain_completed),
    ),
    Tweak(
        "pool thread keeps one app context, `g` swapped by hand",
        "`Executor._call_in_context`, `_app_context`",
        "pool threads",
        True,
        (20, 1000),
        True,
        lambda: patched(Executor, "_call_in_context", plain_call),
    ),
    Tweak(
        "inline checks reuse the thread's app context (perf20)",
        "`Executor.execute`, `_app_context`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_call_in_context", plain_call),
    ),
    Tweak(
        "a check without parameters uses the thread's services scope (batch20)",
        "`Executor._call_in_context`, `services.thread_scope`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_call_in_context", plain_in_context),
    ),
    Tweak(
        "teardown only if the app has one, a new `g` only if used",
        "`Executor._call_in_context`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(Executor, "_call_in_context", tweaked_in_context),
    ),
    Tweak(
        "no `redact_value` call for a None observed value",
        "`executor._shown`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(executor, "redact_value", tweaked_shown),
    ),
    Tweak(
        "a `True` or `None` result not asked whether it is awaitable",
        "`Scope._call`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(Scope, "_call", tweaked_scope_call),
    ),
    Tweak(
        "no prune when the oldest result is young enough",
        "`History._add`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(History, "_add", tweaked_add),
    ),
    Tweak(
        "no query string: `?format=` not looked up",
        "`FormatRegistry.choose`",
        "inline",
        False,
        (1,),
        False,
        lambda: patched(FormatRegistry, "choose", tweaked_choose),
    ),
    Tweak(
        "no `Accept` or `*/*`: the default format without negotiating",
        "`FormatRegistry.negotiate`",
        "inline",
        False,
        (1,),
        False,
        lambda: patched(FormatRegistry, "negotiate", tweaked_negotiate),
    ),
    Tweak(
        "each `Accept` header's answer remembered",
        "`FormatRegistry.negotiate`",
        "inline, Prometheus's `Accept`",
        False,
        (1,),
        True,
        lambda: patched(FormatRegistry, "negotiate", plain_negotiate),
        PROMETHEUS_ACCEPT,
    ),
    Tweak(
        "each `Accept` header's answer remembered",
        "`FormatRegistry.negotiate`",
        "inline, `Accept: */*`",
        False,
        (1,),
        True,
        lambda: patched(FormatRegistry, "negotiate", plain_negotiate),
        "*/*",
    ),
    Tweak(
        "no query string: `?exclude=` not looked up",
        "`views.select`",
        "inline",
        False,
        (1,),
        False,
        lambda: patched(views, "select", tweaked_select),
    ),
)


def batch(client: Any, probes: int) -> float:
    """The median time of one probe over ``probes`` probes, in µs."""
    times = []
    for _ in range(probes):
        start = time.perf_counter()
        response = client.get("/health")
        times.append(time.perf_counter() - start)
        response.close()
    return statistics.median(times) * 1e6


def measure(
    tweak: Tweak, checks: int, rounds: int, probes: int
) -> tuple[float, float, float]:
    """Median probe with the tweak and plain (µs), and the median saving."""
    client = build_ours(checks, threads=tweak.threads).test_client()
    if tweak.accept:
        client.environ_base["HTTP_ACCEPT"] = tweak.accept
    with tweak.other():
        assert client.get("/health").status_code == 200
    for _ in range(20):
        client.get("/health").close()
    withs, withouts, savings = [], [], []
    for _ in range(rounds):
        here = batch(client, probes)
        with tweak.other():
            other = batch(client, probes)
        a, b = (here, other) if tweak.kept else (other, here)
        withs.append(a)
        withouts.append(b)
        savings.append(1 - a / b)
    return (
        statistics.median(withs),
        statistics.median(withouts),
        statistics.median(savings),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="time the tweaks whose name has this")
    args = parser.parse_args(argv)
    rounds, probes = (5, 100) if args.quick else (15, 300)
    print("| tweak | where | probe | with | plain | saves | worth it | in the code |")
    print("|---|---|---|---|---|---|---|---|")
    for tweak in TWEAKS:
        if args.only and args.only not in tweak.name:
            continue
        for checks in tweak.checks:
            # About as long a batch for 1,000 checks as for 20.
            batch_probes = max(5, probes * 20 // max(checks, 20))
            a, b, saving = measure(tweak, checks, rounds, batch_probes)
            print(
                f"| {tweak.name} | {tweak.where} | {tweak.probe}, {checks:,}"
                f" check{'s' if checks > 1 else ''} | {a:,.0f} µs | {b:,.0f} µs"
                f" | {saving * 100:+.1f} % | {'yes' if saving > 0.10 else 'no'} |"
                f" {'kept' if tweak.kept else 'removed'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
