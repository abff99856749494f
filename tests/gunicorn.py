"""A real gunicorn serving a small app on loopback, for server-level tests.

``gunicorn_server(source, workers=..., threads=..., preload=...)`` writes
``source`` as module ``app_module`` (it must define ``app``), and ``files``
(name to text) next to it, into a new directory under the test's temporary
directory (``server.directory``), and serves it with ``sys.executable -m gunicorn``,
worker class ``gthread`` unless ``worker_class`` says otherwise (``sync``,
``gevent``), on a free port of 127.0.0.1. What a test may rely
on:

- The call returns once every worker has booted (a gunicorn hook writes a
  file per worker), without sending a request: a test can still change what
  the app sees before its first request. It fails the test after
  :data:`START_SECONDS`.
- ``config`` is gunicorn config (hooks such as ``child_exit``) added to the
  fixture's own; a ``post_worker_init`` of it runs before the worker counts
  as booted. ``env`` adds environment variables; ``graceful_timeout`` is
  gunicorn's ``--graceful-timeout``.
- :meth:`GunicornServer.get` has an explicit timeout and never raises for
  a missing answer: a request that gets none in time (or whose connection
  is dropped, as when the worker dies) is ``None``, "unanswered".
- The server is stopped at teardown: SIGTERM, then SIGKILL of its whole
  process group, so a worker stuck in a hung request can't outlive the test.

gunicorn missing skips these tests, or fails them when ``CI`` is set.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .processes import LoggedServer, Started
from .server_fixtures import skip_or_fail_missing
from .servers import LOOPBACK, BinaryNotFoundError, find_free_port, is_port_open

_INSTALL = "pip install 'flask-healthchecks[test]'"

#: Seconds for gunicorn to start and boot every worker.
START_SECONDS = 15.0
#: Seconds gunicorn gives workers to finish their requests when stopped.
GRACEFUL_SECONDS = 1

#: Gunicorn's config: each booted worker leaves its pid in ``booted/``. No
#: control socket (gunicorn 24+ opens one in ``~/.gunicorn`` by default, which
#: two servers would share; older versions ignore the setting).
_CONFIG = """\
import os

control_socket_disable = True

{config}

_test_post_worker_init = globals().get("post_worker_init")

def post_worker_init(worker):
    if _test_post_worker_init is not None:
        _test_post_worker_init(worker)
    path = os.path.join({booted!r}, str(os.getpid()))
    with open(path, "w") as f:
        f.write("booted")
"""


class GunicornServer(LoggedServer):
    """A gunicorn master started by a test; see the module docstring."""

    name = "gunicorn"
    stop_seconds = GRACEFUL_SECONDS + 3

    def __init__(
        self,
        directory: Path,
        *,
        workers: int,
        threads: int,
        preload: bool,
        worker_class: str = "gthread",
        config: str = "",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        graceful_timeout: int = GRACEFUL_SECONDS,
    ) -> None:
        self.directory = directory
        self.workers = workers
        port = find_free_port()
        self._booted = directory / "booted"
        self._booted.mkdir()
        config_file = directory / "gunicorn_conf.py"
        config_file.write_text(_CONFIG.format(booted=str(self._booted), config=config))
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(config_file),
            "--chdir",
            str(directory),
            "--bind",
            f"{LOOPBACK}:{port}",
            "--worker-class",
            worker_class,
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--graceful-timeout",
            str(graceful_timeout),
            "--log-level",
            "info",
        ]
        if preload:
            command.append("--preload")
        command += args
        command.append("app_module:app")
        super().__init__(command, directory / "gunicorn.log", port=port, env=env)

    def wait_until_booted(self, timeout: float = START_SECONDS) -> None:
        """Return once every worker has booted and the port is open."""

        def booted() -> bool:
            workers = len(list(self._booted.iterdir()))
            return workers >= self.workers and is_port_open(LOOPBACK, self.port)

        self.wait_until(booted, timeout, "booted")


def require_gunicorn() -> None:
    """Skip the test if gunicorn is not installed, or fail it under ``CI``."""
    if importlib.util.find_spec("gunicorn") is None:
        skip_or_fail_missing(BinaryNotFoundError("gunicorn", _INSTALL))


#: ``gunicorn_server(source, *, workers=1, threads=4, preload=False,
#: worker_class="gthread", files=None, config="", args=(), env=None,
#: graceful_timeout=GRACEFUL_SECONDS)``:
#: ``config`` goes into gunicorn's config file, ``args`` on its command line.
StartGunicorn = Callable[..., GunicornServer]


@pytest.fixture
def gunicorn_server(tmp_path: Path) -> Iterator[StartGunicorn]:
    """Start gunicorn on an app whose module source is given; see the module
    docstring. Every server started is stopped at teardown."""
    require_gunicorn()
    started = Started[GunicornServer](tmp_path, "gunicorn")

    def start(
        source: str,
        *,
        workers: int = 1,
        threads: int = 4,
        preload: bool = False,
        worker_class: str = "gthread",
        files: dict[str, str] | None = None,
        config: str = "",
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        graceful_timeout: int = GRACEFUL_SECONDS,
    ) -> GunicornServer:
        server = GunicornServer(
            started.directory(source, files),
            workers=workers,
            threads=threads,
            preload=preload,
            worker_class=worker_class,
            config=textwrap.dedent(config),
            args=args,
            env=env,
            graceful_timeout=graceful_timeout,
        )
        started.add(server)
        server.wait_until_booted()
        return server

    yield start
    started.stop()
