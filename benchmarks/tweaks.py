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
from flask import Flask, Request
from flask.signals import appcontext_tearing_down

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from scale import build_ours  # noqa: E402 - benchmarks/ is sys.path[0]

from flask_healthcheck import views  # noqa: E402
from flask_healthcheck.checks import CheckResult, interpret  # noqa: E402
from flask_healthcheck.executor import Executor  # noqa: E402
from flask_healthcheck.format_registry import FormatRegistry  # noqa: E402
from flask_healthcheck.formats import Format  # noqa: E402
from flask_healthcheck.redact import redact, redact_value  # noqa: E402
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


def variant_loop(call: str) -> Callable[..., None]:
    """``Executor._execute_in_context`` with another way to call a check:

    ``"pushed"``: an app context pushed and popped per check (its teardown,
    a fresh ``g``); ``"scope"``: a services scope of its own for every
    check, parameters or not; ``"teardown"``: Flask's teardown called
    for every check, whether or not it has anything to do;
    ``"g_if_used"``: a new ``g`` only if the check used it; ``"replace"``:
    the result made with ``dataclasses.replace``; ``"shown_if"``: no
    ``redact_value`` call for a None observed value or unit. Otherwise the
    loop as it is in the code (one test of ``call`` per check more)."""

    def _execute_in_context(
        self: Executor, executions: Any, finish: Any, context: Any, shared: Scope
    ) -> None:
        app = self.app
        perf_counter = time.perf_counter
        set_inside = inside.set
        call_plain = shared.call_plain
        secrets = self._secrets
        teardown = app.do_teardown_appcontext
        own_teardown = (
            getattr(teardown, "__func__", None) is not Flask.do_teardown_appcontext
        )
        new_g = app.app_ctx_globals_class
        new_result, set_fields = object.__new__, object.__setattr__
        wall = time.time() - perf_counter()
        for execution in executions:
            check = execution.check
            start = perf_counter()
            try:
                if call == "pushed":
                    value = self._call_pushed(check, execution.deadline)
                else:
                    set_inside(("check", check.name))
                    try:
                        if call == "scope":
                            value = self._call_scoped(check, execution.deadline)
                        elif not check.parameters and check.kind == "plain":
                            value = call_plain(check.func, execution.deadline)
                        else:
                            value = self._call_scoped(check, execution.deadline)
                    finally:
                        try:
                            if (
                                call == "teardown"
                                or own_teardown
                                or app.teardown_appcontext_funcs
                                or appcontext_tearing_down.receivers
                            ):
                                teardown(sys.exc_info()[1])
                        finally:
                            if call != "g_if_used" or context.g.__dict__:
                                context.g = new_g()
                outcome = interpret(value, none_fails=check.none_fails)
                error = outcome.error
                fields = {
                    "name": check.name,
                    "duration": perf_counter() - start,
                    "error": redact(error, secrets()) if error else error,
                    "observed_value": observed
                    if (observed := outcome.observed_value) is None
                    and call == "shown_if"
                    else redact_value(observed),
                    "observed_unit": unit
                    if (unit := outcome.observed_unit) is None and call == "shown_if"
                    else redact_value(unit),
                    "tags": check.tags,
                    "critical": check.critical,
                    "started_at": wall + start,
                }
                if call != "replace" and type(outcome) is CheckResult:
                    fields["status"] = outcome.status
                    result = new_result(CheckResult)
                    set_fields(result, "__dict__", fields)
                else:
                    result = replace(outcome, **fields)
            except BaseException as e:
                finish(execution, self._failure(check, e, start, wall + start), e)
            else:
                finish(execution, result, None)

    return _execute_in_context


def tweaked_call_plain(self: Scope, func: Callable[..., Any], deadline: float) -> Any:
    # Scope.call_plain not asking a True or None whether it is awaitable.
    self.deadline = deadline
    try:
        value = func()
    finally:
        self.deadline = None
    if value is not True and value is not None and inspect.isawaitable(value):
        scope = Scope(self.app, self.services, deadline=deadline)
        return scope.call(lambda: value, "plain", {})
    return value


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
        "`Executor._execute_in_context` (and `executor._completed`)",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_execute_in_context", variant_loop("replace")),
    ),
    Tweak(
        "pool thread keeps one app context, `g` swapped by hand",
        "`Executor._execute_in_context`, `_app_context`",
        "pool threads",
        True,
        (20, 1000),
        True,
        lambda: patched(Executor, "_execute_in_context", variant_loop("pushed")),
    ),
    Tweak(
        "inline checks reuse the thread's app context (perf20)",
        "`Executor.execute`, `_app_context`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_execute_in_context", variant_loop("pushed")),
    ),
    Tweak(
        "a check without parameters uses the thread's services scope (batch20)",
        "`Executor._execute_in_context`, `services.thread_scope`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_execute_in_context", variant_loop("scope")),
    ),
    Tweak(
        "Flask's teardown called only if it has something to do (issue 20)",
        "`Executor._execute_in_context`",
        "inline",
        False,
        (20, 1000),
        True,
        lambda: patched(Executor, "_execute_in_context", variant_loop("teardown")),
    ),
    Tweak(
        "a new `g` only if the check used it",
        "`Executor._execute_in_context`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(Executor, "_execute_in_context", variant_loop("g_if_used")),
    ),
    Tweak(
        "no `redact_value` call for a None observed value",
        "`Executor._execute_in_context`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(Executor, "_execute_in_context", variant_loop("shown_if")),
    ),
    Tweak(
        "a `True` or `None` result not asked whether it is awaitable",
        "`Scope.call_plain`",
        "inline",
        False,
        (20, 1000),
        False,
        lambda: patched(Scope, "call_plain", tweaked_call_plain),
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
