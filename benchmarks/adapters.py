"""One Flask app builder per health-check library, each in that library's idiom.

Every builder has the same signature::

    build_app(checks, *, timeout, cache_ttl) -> Flask

``checks`` are plain ``Callable[[], bool]`` (True = healthy).  Each adapter wraps
them the way a user of that library would.  ``timeout`` is a per-check timeout
in seconds (``None`` = library default / no timeout), ``cache_ttl`` is the result
cache lifetime in seconds (``0`` = run the checks on every request).

Adapters whose library is not importable are simply left out of
``available_adapters()``; "ours" (``flask_healthcheck``) is optional until it
exists.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask

Check = Callable[[], bool]


class Builder(Protocol):
    def __call__(
        self, checks: list[Check], *, timeout: float | None, cache_ttl: float
    ) -> Flask: ...


@dataclass(frozen=True)
class Adapter:
    key: str  # column / CLI name
    dist: str  # distribution name, for the version banner
    path: str  # URL the health endpoint is served on
    build_app: Builder
    runs_checks: bool = False  # False only for the bare baseline route
    supports_timeout: bool = False
    supports_cache: bool = False
    note: str = ""

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.dist)
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


# ----------------------------------------------------------------------------- load

#: Told of each answer: its status (``None``: no answer), when sent, when done.
Record = Callable[[int | None, float, float], None]


def keep_getting(
    port: int, path: str, timeout: float, until: float, record: Record
) -> None:
    """One keep-alive client GETting ``path`` on 127.0.0.1 until
    ``time.perf_counter()`` passes ``until``, reconnecting after a failure:
    the load loop the benchmarks share."""

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    conn = connect()
    try:
        while (sent := time.perf_counter()) < until:
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status: int | None = response.status
            except (OSError, http.client.HTTPException):
                status = None
                conn.close()
                conn = connect()
            record(status, sent, time.perf_counter())
    finally:
        conn.close()


# --------------------------------------------------------------------------- checks


def sleeping_check(seconds: float, result: bool = True) -> Check:
    def check() -> bool:
        time.sleep(seconds)
        return result

    check.__name__ = f"sleep_{seconds:g}s"
    return check


def trivial_check() -> bool:
    return True


class CountingCheck:
    """Wraps a check and counts how many times it actually ran (thread-safe)."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()
        self.__name__ = getattr(inner, "__name__", "counting_check")

    def __call__(self) -> bool:
        with self._lock:
            self.calls += 1
        return self.inner()


def _check_name(i: int) -> str:
    return f"check_{i}"


# ----------------------------------------------------------------------------- ours


def build_app_ours(
    checks: list[Check], *, timeout: float | None, cache_ttl: float
) -> Flask:
    """flask_healthcheck, per its design contract (GET /health, 200/500 JSON)."""
    from flask_healthcheck import HealthCheck

    app = Flask("bench_ours")
    # Set before HealthCheck(app) so it works whether the extension reads the
    # config at init time or per request.
    app.config["HEALTHCHECK_CACHE_TTL"] = float(cache_ttl)
    health = HealthCheck(app)
    for i, check in enumerate(checks):
        kwargs: dict[str, Any] = {"name": _check_name(i)}
        if timeout is not None:
            kwargs["timeout"] = timeout
        health.add_check(check, **kwargs)
    return app


# ------------------------------------------------------------------- py-healthcheck

_PYHC_LOGGER_SILENCED = False


def _silence_py_healthcheck_logger() -> None:
    # run_check() calls logger.exception()/logger.error() on every failing or
    # timed-out check; with no handler configured that falls through to
    # logging.lastResort and floods stderr.  A NullHandler keeps the library's
    # logging calls (and their cost) but drops the output.
    global _PYHC_LOGGER_SILENCED
    if not _PYHC_LOGGER_SILENCED:
        logging.getLogger("healthcheck").addHandler(logging.NullHandler())
        _PYHC_LOGGER_SILENCED = True


def py_healthcheck_alarm_seconds(timeout: float | None) -> int:
    """py-healthcheck's ``error_timeout`` goes to ``signal.alarm()`` (whole seconds).

    A float such as 0.5 makes ``signal.alarm`` raise TypeError, which the library
    turns into an instant check *failure*, so round up to the next whole second.
    """
    if timeout is None or timeout <= 0:
        return 0
    return max(1, math.ceil(timeout))


def build_app_py_healthcheck(
    checks: list[Check], *, timeout: float | None, cache_ttl: float
) -> Flask:
    """py-healthcheck: HealthCheck() + app.add_url_rule(view_func=health.run)."""
    from healthcheck import HealthCheck  # type: ignore[import-untyped]

    _silence_py_healthcheck_logger()
    health = HealthCheck(
        # ttl=0 -> float(0 or 0) == 0.0 -> a cached entry expires immediately.
        success_ttl=cache_ttl,
        failed_ttl=cache_ttl,
        error_timeout=py_healthcheck_alarm_seconds(timeout),
    )
    for i, check in enumerate(checks):
        health.add_check(_pyhc_wrap(check, _check_name(i)))
    app = Flask("bench_py_healthcheck")
    app.add_url_rule("/healthcheck", "healthcheck", view_func=health.run)
    return app


def _pyhc_wrap(check: Check, name: str) -> Callable[[], tuple[bool, str]]:
    # Checkers must return (passed, output); results and the per-checker cache
    # are keyed by the function object, and ``run(check=...)`` filters by
    # __name__, so each wrapper gets a distinct name.
    def checker() -> tuple[bool, str]:
        ok = bool(check())
        return ok, "ok" if ok else "failed"

    checker.__name__ = name
    checker.__qualname__ = name
    return checker


# -------------------------------------------------------------------- flask-healthz


def build_app_flask_healthz(
    checks: list[Check], *, timeout: float | None, cache_ttl: float
) -> Flask:
    """flask-healthz: HEALTHZ config maps endpoint name -> one function.

    One function per endpoint that signals failure by raising HealthError;
    several dependencies means writing one function that calls them all
    (sequentially).  No cache and no timeouts: ``timeout``/``cache_ttl`` ignored.
    """
    from flask_healthz import HealthError, Healthz  # type: ignore[import-untyped]

    del timeout, cache_ttl  # unsupported by the library

    def ready() -> None:
        failed = [_check_name(i) for i, check in enumerate(checks) if not check()]
        if failed:
            raise HealthError("failed: " + ", ".join(failed))

    def live() -> None:
        return None

    app = Flask("bench_flask_healthz")
    app.config["HEALTHZ"] = {"live": live, "ready": ready}
    Healthz(app, no_log=True)
    return app


# ----------------------------------------------------------------------------- bare


def build_app_bare(
    checks: list[Check], *, timeout: float | None, cache_ttl: float
) -> Flask:
    """Baseline: a plain Flask route returning a small JSON; runs no checks."""
    del checks, timeout, cache_ttl
    app = Flask("bench_bare")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


# -------------------------------------------------------------------------- registry

ALL_ADAPTERS: tuple[Adapter, ...] = (
    Adapter(
        key="ours",
        dist="flask-healthchecks",
        path="/health",
        build_app=build_app_ours,
        runs_checks=True,
        supports_timeout=True,
        supports_cache=True,
    ),
    Adapter(
        key="py-healthcheck",
        dist="py-healthcheck",
        path="/healthcheck",
        build_app=build_app_py_healthcheck,
        note="timeouts via SIGALRM: whole seconds, main thread only",
        runs_checks=True,
        supports_timeout=True,
        supports_cache=True,
    ),
    Adapter(
        key="flask-healthz",
        dist="flask-healthz",
        path="/healthz/ready",
        build_app=build_app_flask_healthz,
        runs_checks=True,
    ),
    Adapter(
        key="bare",
        dist="flask",
        path="/health",
        build_app=build_app_bare,
    ),
)

_IMPORT_NAMES = {
    "ours": "flask_healthcheck",
    "py-healthcheck": "healthcheck",
    "flask-healthz": "flask_healthz",
    "bare": "flask",
}


def adapter_import_error(key: str) -> str | None:
    """None if the adapter's library imports, else a one-line reason."""
    try:
        importlib.import_module(_IMPORT_NAMES[key])
    except ImportError as exc:  # ModuleNotFoundError or a broken install
        return f"{type(exc).__name__}: {exc}"
    return None


def get_adapter(key: str) -> Adapter:
    for adapter in ALL_ADAPTERS:
        if adapter.key == key:
            return adapter
    raise KeyError(key)


def available_adapters() -> list[Adapter]:
    return [a for a in ALL_ADAPTERS if adapter_import_error(a.key) is None]
