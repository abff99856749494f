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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .processes import LoggedServer, Started
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


class UWSGIServer(LoggedServer):
    """A uWSGI master started by a test; see the module docstring."""

    name = "uWSGI"
    stop_seconds = STOP_SECONDS
    stop_signal = signal.SIGINT
    tail_lines = 40

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
        port = find_free_port()
        command = [
            str(uwsgi_binary()),
            "--master",
            "--processes",
            str(processes),
            "--http-socket",
            f"{LOOPBACK}:{port}",
            "--module",
            "app_module:app",
            "--chdir",
            str(directory),
            "--need-app",
            "--die-on-term",
            "--disable-logging",  # no line per request; the rest is logged
            *args,
        ]
        super().__init__(command, directory / "uwsgi.log", port=port, env=env)
        self.master = self.process.pid

    def workers(self) -> dict[int, int]:
        """The pid of each worker spawned so far, by worker number."""
        return {int(number): int(pid) for number, pid in _SPAWNED.findall(self.text())}

    def wait_until_ready(self, timeout: float = START_SECONDS) -> None:
        """Return once every worker is spawned (and has loaded the app, with
        ``--lazy-apps``) and the port is open."""

        def ready() -> bool:
            spawned = len(self.workers()) >= self.processes
            if self.lazy:  # each worker loads the app itself, after its spawn
                loaded = self.text().count("WSGI app 0") >= self.processes
                spawned = spawned and loaded
            return spawned and is_port_open(LOOPBACK, self.port)

        self.wait_until(ready, timeout)


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
    started = Started[UWSGIServer](tmp_path, "uwsgi")

    def start(
        source: str,
        *,
        processes: int = 2,
        args: Sequence[str] = (),
        files: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> UWSGIServer:
        directory = started.directory(source, files)
        server = started.add(
            UWSGIServer(directory, processes=processes, args=args, env=env)
        )
        server.wait_until_ready()
        return server

    yield start
    started.stop()
