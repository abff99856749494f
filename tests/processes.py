"""What the server fixtures share: a logged process in its own group, its
log's tail, its stop, and an HTTP ``GET`` that never raises for a missing
answer.

A server started by :func:`start_logged` runs in a new session, so
:func:`stop_group` can kill it and every worker it forked at once: a worker
stuck in a hung request can't outlive the test.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .servers import LOOPBACK


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
