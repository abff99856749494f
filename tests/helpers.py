"""What the tests share: test data, checks, the apps real servers import,
bounded calls and a local HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_healthcheck import ConfigurationError, HealthCheck, HealthReport

SUCCESS = b'{"status": "success", "error": "", "data": {}, "pagination": {}, "input_errors": {}}'  # noqa: E501
FAILURE = b'{"status": "failure", "error": "", "data": [], "pagination": {}, "input_errors": {}}'  # noqa: E501


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LocalHTTPServer

    def do_GET(self) -> None:
        self.server.requests.append(self._record())
        path = urlsplit(self.path).path
        if path.startswith("/status/"):
            self._answer(int(path.rsplit("/", 1)[1]), b"{}")
        elif path == "/redirect":
            self._answer(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"})
        elif path == "/slow":
            time.sleep(float(self.headers.get("X-Delay", "5")))
            self._answer(200, b"{}")
        else:
            self._answer(200, b'{"status": "green"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.requests.append(self._record(self.rfile.read(length)))
        delay = self.server.post_delay
        if delay:
            time.sleep(delay)
        self._answer(200, b"ok")

    def _record(self, body: bytes = b"") -> Request:
        return Request(self.command, self.path, dict(self.headers.items()), body)

    def _answer(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Request:
    """A request the local server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LocalHTTPServer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 in a thread, recording what it receives.

    ``GET /status/<code>`` answers that status, ``/redirect`` a 302,
    ``/slow`` after the ``X-Delay`` header's seconds, anything else 200 with
    a JSON body. ``POST`` is recorded and answered after ``post_delay``.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.post_delay = 0.0
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> LocalHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


#: How long each fault took to be reported: (fault, seconds, check timeout).
FAULT_TIMES: list[tuple[str, float, float]] = []


def record_fault_time(fault: str, seconds: float, timeout: float) -> None:
    """Note how long ``fault`` took to be reported; printed after the run."""
    FAULT_TIMES.append((fault, seconds, timeout))


class SignalFlushingClient(FlaskClient):
    """A test client that waits, after each request, until the signals that
    request caused are delivered (probes deliver them on another thread)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        state = self.application.extensions.get("healthcheck")
        if state is not None:
            assert state.wait_for_signals(5.0), "signals still undelivered after 5 s"
        return response


T = TypeVar("T")


def wait_for(
    condition: Callable[[], bool], timeout: float = 5.0, message: str = ""
) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` s.

    Signals sent for an HTTP probe reach their subscribers on another
    thread, after the probe has answered: assert on what a subscriber saw
    through this, never right after the probe.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message or f"timed out after {timeout} s"
        time.sleep(0.01)


class Bounded(Generic[T]):
    """A call running in a daemon thread, waited for with a deadline.

    A call that never returns (a probe stuck behind a hung thread) fails the
    test instead of hanging the run; being a daemon, its thread can't keep
    the interpreter from exiting either.
    """

    def __init__(self, func: Callable[[], T], name: str = "bounded call") -> None:
        self._func = func
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._func()
        except BaseException as e:  # noqa: B036 - reported in result()
            self._error = e
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float, what: str = "the call") -> T:
        """The call's value; a test failure if it raised anything (even a
        ``BaseException``) or did not return within ``timeout`` seconds."""
        if not self._done.wait(timeout):
            raise AssertionError(f"{what} did not return within {timeout:g} s")
        if self._error is not None:
            raise AssertionError(
                f"{what} raised {type(self._error).__name__}: {self._error!r}"
            ) from self._error
        return cast(T, self._value)


def bounded(func: Callable[[], T], timeout: float, what: str = "the call") -> T:
    """``func()`` in a daemon thread, failing the test after ``timeout`` s."""
    return Bounded(func, what).result(timeout, what)


def check_threads(app: Flask) -> int:
    """How many threads run checks of apps named as ``app`` is (idle ones
    included: they wait for the next run a while before they exit)."""
    prefix = f"healthcheck-{app.name}-"
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


class Switch:
    """A check whose outcome the test sets: ``switch.ok = False``."""

    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


class Counter:
    """A count that threads add to (``counter.add()``)."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1


class Counted:
    """A check returning ``value``, noting each run in ``runs``."""

    def __init__(self, runs: list[int], value: bool) -> None:
        self.runs = runs
        self.value = value

    def __call__(self) -> bool:
        self.runs.append(1)
        return self.value


def health_or_refusal(app: Flask, key: str) -> HealthCheck | None:
    """``HealthCheck(app)``, or None if it refused ``app``'s config with a
    :class:`~flask_healthcheck.ConfigurationError` that names ``key``."""
    try:
        return HealthCheck(app)
    except ConfigurationError as e:
        assert key in str(e)
        return None


def run_in(app: Flask, health: HealthCheck) -> str:
    """``health.run()``'s status, in an app context as a CLI command has."""
    return run(app, health).status


def burn(seconds: float) -> Callable[[], bool]:
    """A check that burns ``seconds`` of its thread's CPU time (however
    loaded the machine, it takes that much CPU, never less)."""

    def check() -> bool:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass
        return True

    return check


class FirstCallDiffers(Generic[T]):
    """A check whose first call does ``first`` and later calls ``then``:
    for showing one bad run doesn't wedge a check for good."""

    def __init__(self, first: Callable[[], T], then: Callable[[], T]) -> None:
        self.first = first
        self.then = then
        self.calls = 0

    def __call__(self) -> T:
        self.calls += 1
        return self.first() if self.calls == 1 else self.then()


def configured_health(app: Flask, **config: object) -> HealthCheck:
    """The app's extension, once ``config`` is in the app's config."""
    app.config.update(config)
    return HealthCheck(app)


def detailed_health(app: Flask, timeout: float) -> HealthCheck:
    """The app's extension, showing details, with a timeout."""
    return configured_health(
        app, HEALTHCHECK_TIMEOUT=timeout, HEALTHCHECK_SHOW_DETAILS=True
    )


#: Requests every format refuses, with their status: (method, URL, code).
REFUSALS = [
    ("GET", "/health/nope", 404),
    ("GET", "/health/", 404),
    ("GET", "/health?exclude=nope", 400),
]


def slow_ok() -> bool:
    """A check that passes after 50 ms, long enough to overlap another."""
    time.sleep(0.05)
    return True


def strict_json(data: bytes) -> Any:
    """JSON as other languages read it: NaN and Infinity are errors."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data, parse_constant=refuse)


def app_module(**config: object) -> str:
    """The start of an app module a real server imports: ``here`` (the
    module's directory), ``app`` with ``HEALTHCHECK_<KEY>`` set to each
    value (Python source, or a number), and ``health``; ``os``, ``threading``,
    ``time``, ``Flask`` and ``signals`` are imported."""
    settings = "".join(f"    HEALTHCHECK_{k}={v},\n" for k, v in config.items())
    return f"""
import os
import threading
import time
from pathlib import Path

from flask import Flask

from flask_healthcheck import HealthCheck, signals

here = Path(__file__).parent
app = Flask(__name__)
app.config.update(
{settings})
health = HealthCheck(app)
"""


#: A trivial ``live`` check, ``alive``, as source to follow :func:`app_module`.
ALIVE = """

@health.check(tags=["live"])
def alive():
    return True
"""


def live_app(**config: object) -> str:
    """:func:`app_module` with ``/livez`` running the ``live`` checks, and
    one trivial such check, ``alive``; add other checks after it."""
    return app_module(ENDPOINTS='{"/livez": ["live"]}', **config) + ALIVE


def sqlite_check(busy_seconds: float) -> str:
    """A check ``database``, as source, that blocks in C (sqlite3's busy
    handler, up to ``busy_seconds``) while another process holds the lock of
    the database in ``$DATABASE``; put its decorator before it. Needs
    ``import os, sqlite3``."""
    return f"""def database():
    with sqlite3.connect(os.environ["DATABASE"], timeout={busy_seconds}) as db:
        db.execute("SELECT count(*) FROM t").fetchone()
    return True
"""


#: ``HEALTHCHECK_ENDPOINTS`` of README's Kubernetes layout, as source.
PROBES = '{"/livez": ["live"], "/readyz": ["ready"]}'


def probes_app(timeout: float) -> str:
    """README's Kubernetes layout as a server imports it: ``/livez`` runs
    the ``live`` checks (``alive``, trivial) and ``/readyz`` the ``ready``
    ones, each bounded by ``timeout``; add the ``ready`` checks after it."""
    return app_module(ENDPOINTS=PROBES, TIMEOUT=timeout) + ALIVE


def hung_database_app(timeout: float, wait: str = "") -> str:
    """:func:`probes_app` with a ``ready`` check on a database that never
    answers (it waits ``never.wait(wait)``: forever by default)."""
    return f"""{probes_app(timeout)}
never = threading.Event()


@health.check(tags=["ready"])
def database():
    never.wait({wait})  # a connection to a database that never answers
    return True
"""


def run(app: Flask, health: HealthCheck) -> HealthReport:
    """``health.run()`` in an app context of ``app``."""
    with app.app_context():
        return health.run()
