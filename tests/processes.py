"""What the server fixtures share: a logged process in its own group, its
log's tail, its stop, and an HTTP ``GET`` that never raises for a missing
answer; :class:`LoggedServer` puts them together with a readiness wait, and
:class:`Started` keeps a fixture's servers, each in a directory of its own.

A server started by :func:`start_logged` runs in a new session, so
:func:`stop_group` can kill it and every worker it forked at once: a worker
stuck in a hung request can't outlive the test.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import pytest

from .servers import LOOPBACK

#: Files to write next to a server's app: name to text.
Files = dict[str, str] | None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, as a client saw it."""

    status: int
    body: bytes
    seconds: float
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def http_get(
    port: int, path: str, timeout: float, headers: dict[str, str] | None = None
) -> Answer | None:
    """``GET path`` on a new connection to ``port`` of 127.0.0.1 (any server);
    ``None`` if not answered in time, or if the connection is dropped."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(
            "GET", path, headers={"Connection": "close", **(headers or {})}
        )
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return Answer(
        response.status, body, time.perf_counter() - start, dict(response.getheaders())
    )


def start_logged(
    command: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group (killed as one by
    :func:`stop_group`), its output written to ``log``; ``env`` is added to
    this process's environment."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def read_log(log: Path) -> str:
    """The log's text so far; empty if there is none yet."""
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def log_tail(log: Path, lines: int) -> str:
    """The last ``lines`` lines of the log, for failure messages."""
    return "\n".join(read_log(log).splitlines()[-lines:])


def stop_group(
    process: subprocess.Popen[bytes],
    seconds: float,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """Ask the process to stop with ``stop_signal``, give it ``seconds``, then
    SIGKILL its whole group: workers may outlive a master that was killed or
    took too long."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.poll() is None:
        process.wait(5)


class LoggedServer:
    """A server process a test started on a loopback ``port``, in its own
    process group, its output in ``log``: what gunicorn, uWSGI, Prometheus
    and the matrix's servers share (start, readiness, log, stop)."""

    #: The server's name in failure messages.
    name = "the server"
    #: Seconds the server gets to stop after :attr:`stop_signal`.
    stop_seconds = 3.0
    stop_signal = signal.SIGTERM
    #: How many lines of the log :meth:`tail` shows by default.
    tail_lines = 30

    def __init__(
        self,
        command: Sequence[str],
        log: Path,
        *,
        port: int,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.log = log
        self.process = start_logged(command, log, cwd=cwd, env=env)

    def wait_until(
        self, ready: Callable[[], bool], timeout: float, what: str = "ready"
    ) -> None:
        """Return once ``ready()``; fail the test (with the log's tail) if
        the server exits first, or stop it and fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.name} not {what} in {timeout:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def get(self, path: str, timeout: float) -> Answer | None:
        """``GET path`` on a new connection; ``None`` if not answered in time."""
        return http_get(self.port, path, timeout)

    def text(self) -> str:
        """The server's log so far."""
        return read_log(self.log)

    def tail(self, lines: int | None = None) -> str:
        """The last lines of the server's log, for failure messages."""
        return log_tail(self.log, self.tail_lines if lines is None else lines)

    def stop(self) -> None:
        stop_group(self.process, self.stop_seconds, self.stop_signal)


S = TypeVar("S", bound=LoggedServer)


class Started(Generic[S]):
    """The servers a fixture started, each in a directory of its own under
    the test's ``tmp_path``; :meth:`stop` stops them all at teardown."""

    def __init__(self, tmp_path: Path, prefix: str) -> None:
        self._tmp_path = tmp_path
        self._prefix = prefix
        self.servers: list[S] = []

    def directory(self, source: str | None = None, files: Files = None) -> Path:
        """A new directory for the next server, holding ``source`` as module
        ``app_module`` and ``files`` (name to text)."""
        directory = self._tmp_path / f"{self._prefix}{len(self.servers)}"
        directory.mkdir()
        if source is not None:
            (directory / "app_module.py").write_text(textwrap.dedent(source))
        for name, text in (files or {}).items():
            (directory / name).write_text(text)
        return directory

    def add(self, server: S) -> S:
        self.servers.append(server)
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
