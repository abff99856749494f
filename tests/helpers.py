"""Shared test data and a local HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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
            assert state.signals.flush(5.0), "signals still undelivered after 5 s"
        return response
