"""A real uWSGI serving a small app on loopback, for server-level tests.

``uwsgi_server(source, processes=2, args=(...))`` writes ``source`` as module
``app_module`` (it must define ``app``), and ``files`` (name to text) next to
it, into a new directory under the test's temporary directory
(``server.directory``), and serves it with the ``uwsgi`` of the running
interpreter's environment (next to ``sys.executable``): ``--master``,
``--processes``, ``--http-socket`` on a free port of 127.0.0.1, and uWSGI's
defaults otherwise; ``args`` adds options such as ``--enable-threads`` or
``--lazy-apps``. What a test may rely on:

- The call returns once every worker is spawned (and, with ``--lazy-apps``,
  has loaded the app) and the port accepts connections, without sending a
  request. It fails the test after :data:`START_SECONDS`.
- :meth:`UWSGIServer.get` has an explicit timeout and never raises for a
  missing answer: a request that gets none in time is ``None``.
- :attr:`UWSGIServer.master` is the master's pid; :meth:`UWSGIServer.workers`
  the workers' pids, read from uWSGI's log.
- The server is stopped at teardown: SIGINT (uWSGI's "stop now"), then
  SIGKILL of its whole process group, so a worker stuck in a hung request
  can't outlive the test.

uWSGI missing skips these tests, or fails them when ``CI`` is set.
"""

from __future__ import annotations

import re
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .processes import Answer, http_get, log_tail, read_log, start_logged, stop_group
from .server_fixtures import skip_or_fail_missing
from .servers import LOOPBACK, BinaryNotFoundError, find_free_port, is_port_open

#: Seconds for uWSGI to start and spawn every worker.
START_SECONDS = 15.0
#: Seconds uWSGI gets to stop after SIGINT before its group is killed.
STOP_SECONDS = 3.0

_SPAWNED = re.compile(r"spawned uWSGI worker (\d+) \(.*?pid: (\d+)")


def uwsgi_binary() -> Path:
    """The ``uwsgi`` of this interpreter's environment."""
    return Path(sys.executable).parent / "uwsgi"


class UWSGIServer:
    """A uWSGI master started by a test; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        processes: int,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.processes = processes
        self.lazy = "--lazy-apps" in args
        self.port = find_free_port()
        self.log = directory / "uwsgi.log"
        command = [
            str(uwsgi_binary()),
            "--master",
            "--processes",
            str(processes),
            "--http-socket",
            f"{LOOPBACK}:{self.port}",
            "--module",
            "app_module:app",
            "--chdir",
            str(directory),
            "--need-app",
            "--die-on-term",
            "--disable-logging",  # no line per request; the rest is logged
            *args,
        ]
        self.process = start_logged(command, self.log, env=env)
        self.master = self.process.pid

    def workers(self) -> dict[int, int]:
        """The pid of each worker spawned so far, by worker number."""
        return {int(number): int(pid) for number, pid in _SPAWNED.findall(self.text())}

    def wait_until_ready(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"uWSGI exited with {self.process.returncode}:\n{self.tail()}"
                )
            text = self.text()
            ready = len(self.workers()) >= self.processes
            if self.lazy:  # each worker loads the app itself, after its spawn
                ready = ready and text.count("WSGI app 0") >= self.processes
            if ready and is_port_open(LOOPBACK, self.port):
                return
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"uWSGI was not ready in {timeout:g} s:\n{self.tail()}")
            time.sleep(0.05)

    def get(self, path: str, timeout: float) -> Answer | None:
        return http_get(self.port, path, timeout)

    def text(self) -> str:
        return read_log(self.log)

    def tail(self, lines: int = 40) -> str:
        """The last lines of uWSGI's log, for failure messages."""
        return log_tail(self.log, lines)

    def stop(self) -> None:
        stop_group(self.process, STOP_SECONDS, signal.SIGINT)


def require_uwsgi() -> None:
    """Skip the test if uWSGI is not installed, or fail it under ``CI``."""
    if not uwsgi_binary().exists():
        skip_or_fail_missing(
            BinaryNotFoundError(str(uwsgi_binary()), "pip install uwsgi")
        )


#: ``uwsgi_server(source, *, processes=2, args=(), files=None, env=None)``.
StartUWSGI = Callable[..., UWSGIServer]


@pytest.fixture
def uwsgi_server(tmp_path: Path) -> Iterator[StartUWSGI]:
    """Start uWSGI on an app whose module source is given; see the module
    docstring. Every server started is stopped at teardown."""
    require_uwsgi()
    started: list[UWSGIServer] = []

    def start(
        source: str,
        *,
        processes: int = 2,
        args: Sequence[str] = (),
        files: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> UWSGIServer:
        directory = tmp_path / f"uwsgi{len(started)}"
        directory.mkdir()
        (directory / "app_module.py").write_text(textwrap.dedent(source))
        for name, text in (files or {}).items():
            (directory / name).write_text(text)
        server = UWSGIServer(directory, processes=processes, args=args, env=env)
        started.append(server)
        server.wait_until_ready()
        return server

    yield start
    for server in started:
        server.stop()
