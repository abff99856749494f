"""Disposable PostgreSQL and Redis servers, plus network-fault helpers, for tests.

Only the standard library is used. The servers run as child processes of the
test process, on free loopback ports, with their files in a private temporary
directory that :meth:`cleanup` removes.

What a caller may rely on:

- :meth:`start` returns only once the server accepts connections, and raises
  :class:`ServerStartError` (with the tail of the server's log) otherwise.
- :meth:`stop` followed by :meth:`start` reuses the same port and data, so a
  fault test can take a dependency away while the app runs and bring it back.
- Nothing outlives the test process: servers are stopped by their owner's
  cleanup, by an :mod:`atexit` hook, and, where ``setpriv`` exists, by the
  kernel when the process that started them dies (``PR_SET_PDEATHSIG``).
  Directories left by a process that was killed outright are removed the next
  time a server is created.
- A missing server binary raises :class:`BinaryNotFoundError`, whose message
  says what to install.

PostgreSQL refuses to run as root. When the effective uid is 0, ``initdb``,
``postgres`` and ``psql`` run as the ``postgres`` system user instead, and the
server's directory is created where that user can reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar
from urllib.parse import quote

__all__ = [
    "LOOPBACK",
    "BinaryNotFoundError",
    "BlackHoleServer",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "ServerStartError",
    "closed_port",
    "env_flag",
    "find_free_port",
    "find_postgres_bindir",
    "find_redis_server",
    "is_port_open",
    "stop_all_servers",
]

#: The only address the servers listen on.
LOOPBACK = "127.0.0.1"

_DIR_PREFIX = "testsrv-"
_OWNER_FILE = "owner.pid"
_SERVER_PID_FILE = "server.pid"
_FALSY = frozenset({"", "0", "false", "no", "off", "n", "f"})
#: Longest parent directory accepted for a server directory: PostgreSQL's unix
#: socket ``<parent>/testsrv-postgres-XXXXXXXX/sock/.s.PGSQL.NNNNN`` (parent
#: plus 46 characters) must fit the kernel's 107-byte limit.
_MAX_PARENT_LEN = 60
#: Lowest port :func:`find_free_port` picks at random.
_PORT_FLOOR = 10000

_S = TypeVar("_S", bound="_ManagedServer")


class ServerError(RuntimeError):
    """Base class of every error raised by this module."""


class BinaryNotFoundError(ServerError):
    """A server program is not installed.

    :param binary: what is missing, e.g. ``"redis-server"``.
    :param install_hint: how to get it, e.g. ``"apt-get install redis-server"``.
    """

    def __init__(self, binary: str, install_hint: str) -> None:
        super().__init__(f"{binary} not installed: {install_hint}")
        #: What is missing.
        self.binary = binary
        #: The command that installs it.
        self.install_hint = install_hint


class ServerStartError(ServerError):
    """A server could not be set up, or did not accept connections in time."""


def env_flag(name: str = "CI") -> bool:
    """Whether environment variable ``name`` is set to a truthy value.

    Unset, empty, ``0``, ``false``, ``no``, ``off`` (any case) are false;
    anything else, such as ``true`` or ``1``, is true.
    """
    return os.environ.get(name, "").strip().lower() not in _FALSY


# --------------------------------------------------------------------- ports


def _ephemeral_low() -> int:
    try:
        fields = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(fields[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing is bound to right now.

    The port is checked by binding a socket to it. It is picked at random
    below the kernel's ephemeral range, so the kernel never hands it out as
    the source port of an outgoing connection: a server stopped by a fault
    test can be started again on the same port. Falls back to binding port 0.
    """
    low = _ephemeral_low()
    if low - _PORT_FLOOR >= 1000:
        rng = random.SystemRandom()
        for _ in range(64):
            candidate = rng.randrange(_PORT_FLOOR, low)
            if _bindable(host, candidate):
                return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


_RESERVED: list[socket.socket] = []
_RESERVED_LOCK = threading.Lock()


def closed_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` where a TCP connect is refused at once.

    The port stays bound, but never listening, by a socket kept until the
    process exits: nothing else can take it, and connecting to it gets a
    ``ConnectionRefusedError`` for as long as the tests run.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port: int = sock.getsockname()[1]
    with _RESERVED_LOCK:
        _RESERVED.append(sock)
    return port


@atexit.register
def _release_reserved() -> None:
    with _RESERVED_LOCK:
        reserved, _RESERVED[:] = list(_RESERVED), []
    for sock in reserved:
        sock.close()


def is_port_open(host: str, port: int, timeout: float = 0.25) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds within ``timeout``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ binaries


def _is_exe(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


_PG_HINT = "apt-get install postgresql"
_PG_WHAT = "PostgreSQL server binaries (initdb, postgres)"


def find_postgres_bindir() -> Path:
    """The directory holding PostgreSQL's ``initdb`` and ``postgres``.

    Looked for in order: ``$POSTGRES_BINDIR``; ``pg_config --bindir``;
    ``/usr/lib/postgresql/*/bin``, highest version first; ``$PATH``.

    :raises BinaryNotFoundError: if none has both programs.
    """
    override = os.environ.get("POSTGRES_BINDIR")
    if override:
        path = Path(override)
        if _is_exe(path / "initdb") and _is_exe(path / "postgres"):
            return path
        raise BinaryNotFoundError(
            f"{_PG_WHAT} in $POSTGRES_BINDIR={override}", _PG_HINT
        )
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            result = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            if result.stdout.strip():
                candidates.append(Path(result.stdout.strip()))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True
    )
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if _is_exe(candidate / "initdb") and _is_exe(candidate / "postgres"):
            return candidate
    raise BinaryNotFoundError(_PG_WHAT, _PG_HINT)


def _find_psql(bindir: Path) -> Path:
    if _is_exe(bindir / "psql"):
        return bindir / "psql"
    found = shutil.which("psql")
    if found is not None:
        return Path(found)
    raise BinaryNotFoundError("psql", "apt-get install postgresql-client")


def find_redis_server() -> Path:
    """The ``redis-server`` program: ``$REDIS_SERVER``, else ``$PATH``.

    :raises BinaryNotFoundError: if it is not installed.
    """
    hint = "apt-get install redis-server"
    override = os.environ.get("REDIS_SERVER")
    if override:
        if _is_exe(Path(override)):
            return Path(override)
        raise BinaryNotFoundError(f"redis-server at $REDIS_SERVER={override}", hint)
    candidates = [shutil.which("redis-server"), "/usr/bin/redis-server"]
    candidates.append("/usr/local/bin/redis-server")
    for candidate in candidates:
        if candidate is not None and _is_exe(Path(candidate)):
            return Path(candidate)
    raise BinaryNotFoundError("redis-server", hint)


@functools.cache
def _setpriv() -> str | None:
    """``setpriv`` if it supports ``--pdeathsig`` (util-linux 2.33+)."""
    exe = shutil.which("setpriv")
    if exe is None:
        return None
    try:
        subprocess.run(
            [exe, "--pdeathsig", "TERM", "--", "true"],
            capture_output=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return exe


# ------------------------------------------------------- accounts and dirs


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def _account_named(name: str) -> _Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ServerError(
            f"running as root, but there is no {name!r} system user to run "
            f"PostgreSQL as (it refuses to run as root): {_PG_HINT} creates it"
        ) from None
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    return _Account(name, entry.pw_uid, entry.pw_gid, groups)


def _traversable(directory: Path, account: _Account | None) -> bool:
    """Whether ``account`` (None: this process) can reach into ``directory``."""
    try:
        resolved = directory.resolve(strict=True)
        if account is None:
            return resolved.is_dir() and os.access(resolved, os.W_OK | os.X_OK)
        for step in (resolved, *resolved.parents):
            info = step.stat()
            if info.st_uid == account.uid:
                bit = stat.S_IXUSR
            elif info.st_gid in account.groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not info.st_mode & bit:
                return False
    except OSError:
        return False
    return True


def _choose_parent(base_dir: Path | None, account: _Account | None) -> Path:
    candidates = [] if base_dir is None else [base_dir]
    candidates += [Path(tempfile.gettempdir()), Path("/tmp")]
    for candidate in candidates:
        if len(str(candidate)) <= _MAX_PARENT_LEN and _traversable(candidate, account):
            return candidate.resolve()
    raise ServerError(
        f"no directory among {[str(c) for c in candidates]} is short enough and "
        "reachable by the server's user"
    )


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _runs_in(pid: int, root: Path) -> bool:
    """Whether process ``pid``'s working directory is inside ``root``."""
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == str(root) or cwd.startswith(f"{root}/")


def _sweep_stale(parent: Path) -> None:
    """Remove server dirs (and kill their servers) whose owner process is gone."""
    for root in parent.glob(f"{_DIR_PREFIX}*"):
        owner = _read_pid(root / _OWNER_FILE)
        if owner is None or _pid_alive(owner):
            continue
        server = _read_pid(root / _SERVER_PID_FILE)
        if server is not None and _runs_in(server, root):
            with contextlib.suppress(OSError):
                os.killpg(server, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _child_pids(pid: int) -> list[int]:
    """Pids of the live children of process ``pid`` (from /proc)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(entry.name))
    return children


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie counts as exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True
    return not fields or fields[0] in ("Z", "X")


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------ base class

_LIVE: set[_ManagedServer] = set()
_LIVE_LOCK = threading.Lock()


def stop_all_servers() -> None:
    """Stop every server of this process and remove its directory.

    Registered with :mod:`atexit`; safe to call at any time and repeatedly.
    """
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        with contextlib.suppress(Exception):
            server.cleanup()


atexit.register(stop_all_servers)


class _ManagedServer:
    """A server process with a private directory, start/stop and cleanup."""

    kind: ClassVar[str] = "server"
    #: Signal for an orderly, fast shutdown.
    _stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    #: Signals tried, in order, when the orderly shutdown takes too long.
    _escalation: ClassVar[tuple[signal.Signals, ...]] = (signal.SIGKILL,)
    #: Signal the kernel sends the server when its parent dies (via setpriv).
    _death_signal: ClassVar[str] = "TERM"

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None,
        *,
        host: str,
        port: int | None,
        startup_timeout: float,
        shutdown_timeout: float,
        die_with_parent: bool,
    ) -> None:
        #: Address the server listens on.
        self.host = host
        #: Seconds :meth:`start` waits for the server to accept connections.
        self.startup_timeout = startup_timeout
        #: Seconds :meth:`stop` waits before escalating to harsher signals.
        self.shutdown_timeout = shutdown_timeout
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._port_fixed = port is not None
        self._port = port if port is not None else find_free_port(host)
        self._die_with_parent = die_with_parent
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_before = False
        self._lock = threading.RLock()

    # -- hooks for subclasses

    def _account(self) -> _Account | None:
        return None

    def _prepare(self) -> None:
        """One-time setup before the first launch (files, initdb)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self, proc: subprocess.Popen[bytes]) -> bool:
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """One-time setup once the server first accepts connections."""

    def _forget(self) -> None:
        """Drop state tied to the removed directory."""

    # -- public API

    @property
    def port(self) -> int:
        """TCP port; fixed for the life of the object once started."""
        return self._port

    @property
    def root(self) -> Path:
        """The server's private directory (created on first use)."""
        with self._lock:
            if self._root is None:
                account = self._account()
                parent = _choose_parent(self._base_dir, account)
                _sweep_stale(parent)
                root = Path(
                    tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{self.kind}-", dir=parent)
                )
                (root / _OWNER_FILE).write_text(f"{os.getpid()}\n")
                if account is not None:
                    os.chown(root, account.uid, account.gid)
                os.chmod(root, 0o700)
                self._root = root
                with _LIVE_LOCK:
                    _LIVE.add(self)
            return self._root

    @property
    def log_path(self) -> Path:
        """The server's log (stdout and stderr, appended across restarts)."""
        return self.root / "server.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive (not whether it is ready)."""
        return self.pid is not None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log."""
        return _tail(self.log_path, lines)

    def start(self: _S) -> _S:
        """Start the server and wait until it accepts connections.

        Does nothing if it is running. After :meth:`stop` it comes back on the
        same port with the same data. On the first start only, a port taken
        by someone else meanwhile is replaced by a new free one.

        :raises ServerStartError: with the log tail, if it does not come up.
        """
        with self._lock:
            if self.is_running:
                return self
            self._reap()
            self._prepare()
            retries = 0 if (self._port_fixed or self._started_before) else 2
            while True:
                offset = self._log_size()
                try:
                    self._launch()
                    break
                except ServerStartError:
                    if retries and "Address already in use" in self._log_since(offset):
                        retries -= 1
                        self._port = find_free_port(self.host)
                        continue
                    raise
            if not self._started_before:
                try:
                    self._after_first_start()
                except BaseException:
                    self.kill()
                    raise
                self._started_before = True
            return self

    def stop(self) -> None:
        """Shut the server down and wait until its process has exited.

        The port then refuses connections. Harsher signals follow if the
        orderly shutdown takes longer than :attr:`shutdown_timeout`.
        Idempotent.
        """
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            clean = False
            try:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(self._stop_signal)
                    try:
                        proc.wait(self.shutdown_timeout)
                        clean = True
                    except subprocess.TimeoutExpired:
                        self._escalate(proc)
            finally:
                # Also reached on KeyboardInterrupt: never leave it running.
                if not clean:
                    self._kill_group(proc)
                self._proc = None

    def _escalate(self, proc: subprocess.Popen[bytes]) -> None:
        for sig in self._escalation:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(5)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """SIGKILL the server and all its processes, as in a crash. Idempotent."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                self._kill_group(proc)

    def restart(self: _S) -> _S:
        """:meth:`stop`, then :meth:`start` on the same port and data."""
        self.stop()
        return self.start()

    def ensure_running(self: _S) -> _S:
        """Start the server unless it is running (e.g. after a fault test)."""
        return self.start()

    def cleanup(self) -> None:
        """Stop the server and delete its directory. Idempotent.

        The object stays usable: a later :meth:`start` sets everything up anew.
        """
        with self._lock:
            try:
                self.stop()
            finally:
                root, self._root = self._root, None
                self._started_before = False
                self._forget()
                with _LIVE_LOCK:
                    _LIVE.discard(self)
                if root is not None:
                    shutil.rmtree(root, ignore_errors=True)

    def __enter__(self: _S) -> _S:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self._port} {state}>"

    # -- internals

    def _child_env(self) -> dict[str, str]:
        dropped = {"LANG", "LANGUAGE"}
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PG", "LC_")) and key not in dropped
        }
        env.update(LC_ALL="C", LANG="C", TZ="UTC", HOME=str(self.root))
        return env

    def _run(self, argv: Sequence[str], what: str, timeout: float = 120.0) -> str:
        """Run a setup program to completion, as the server's account."""
        account = self._account()
        try:
            result = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd=self.root,
                env=self._child_env(),
                timeout=timeout,
                user=None if account is None else account.uid,
                group=None if account is None else account.gid,
                extra_groups=None if account is None else list(account.groups),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerStartError(f"{what} failed: {exc}") from exc
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ServerStartError(
                f"{what} failed (exit {result.returncode}):\n{output}"
            )
        return result.stdout

    def _launch(self) -> None:
        argv = self._command()
        setpriv = _setpriv() if self._die_with_parent else None
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", self._death_signal, "--", *argv]
        account = self._account()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=self._child_env(),
                start_new_session=True,
                user=None if account is None else account.uid,
                group=None if account is None else account.gid,
                extra_groups=None if account is None else list(account.groups),
            )
        self._proc = proc
        (self.root / _SERVER_PID_FILE).write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.01
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                self._kill_group(proc)
                raise ServerStartError(
                    f"{self.kind} exited with code {code} while starting on "
                    f"{self.host}:{self._port}\n{self._log_excerpt()}"
                )
            if self._ready(proc):
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise ServerStartError(
                    f"{self.kind} did not accept connections on {self.host}:"
                    f"{self._port} within {self.startup_timeout:g}s\n"
                    f"{self._log_excerpt()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)

    def _log_excerpt(self) -> str:
        return f"--- last lines of {self.log_path} ---\n{self.log_tail()}"

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _reap(self) -> None:
        """Forget a server process that died on its own, killing leftovers."""
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            self._proc = None
            self._kill_group(proc)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        # The server leads its own process group (start_new_session), but
        # PostgreSQL's children each call setsid(), so they are found by
        # parent pid and killed one by one as well.
        children = _child_pids(proc.pid)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        deadline = time.monotonic() + 10
        while any(not _gone(child) for child in children):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)


# ---------------------------------------------------------------- postgres


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PostgresServer(_ManagedServer):
    """A throwaway PostgreSQL cluster on a free loopback port.

    On first :meth:`start` it runs ``initdb`` (``fsync`` off, no sync, C
    locale), then creates login role ``user`` with ``password`` (stored as
    SCRAM-SHA-256) and database ``database`` owned by it. Authentication:

    - ``user`` (and every role but the superuser) over TCP on ``host``:
      ``scram-sha-256``, so a wrong password is rejected;
    - ``superuser`` over TCP on ``host``: ``trust`` (see :attr:`superuser_url`);
    - unix socket in :attr:`socket_dir`: ``trust``.

    :param base_dir: where to create the server's directory. Ignored in favour
        of the system temp dir if the server's user cannot reach it (pytest's
        ``/tmp/pytest-of-root`` is 0700) or its path is too long for a socket.
    :param bindir: PostgreSQL's bin directory; found by
        :func:`find_postgres_bindir` if omitted.
    :param run_as: system user to run PostgreSQL as when this process is root;
        default ``postgres``. Ignored when not root.
    :param settings: extra ``postgresql.conf`` settings, overriding ours.
    :param die_with_parent: have the kernel shut the server down if the
        thread that started it dies (needs ``setpriv``).
    :raises BinaryNotFoundError: if PostgreSQL is not installed.
    """

    kind = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, exit
    _escalation = (signal.SIGQUIT, signal.SIGKILL)  # "immediate", then kill
    _death_signal = "QUIT"

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        user: str = "health",
        password: str = "s3cret-pw",
        database: str = "health",
        superuser: str = "postgres",
        host: str = LOOPBACK,
        port: int | None = None,
        bindir: str | os.PathLike[str] | None = None,
        run_as: str | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 30.0,
        die_with_parent: bool = True,
    ) -> None:
        #: PostgreSQL's bin directory.
        self.bindir = find_postgres_bindir() if bindir is None else Path(bindir)
        for program in ("initdb", "postgres"):
            if not _is_exe(self.bindir / program):
                raise BinaryNotFoundError(f"{self.bindir / program}", _PG_HINT)
        self._psql = _find_psql(self.bindir)
        #: Login role created for the application, and its password.
        self.user = user
        self.password = password
        #: Database owned by :attr:`user`.
        self.database = database
        #: Superuser created by initdb; trusted on loopback and the socket.
        self.superuser = superuser
        self._settings = dict(settings or {})
        self._run_as: _Account | None = None
        if os.geteuid() == 0:
            self._run_as = _account_named(run_as or "postgres")
        self._initialised = False
        super().__init__(
            base_dir,
            host=host,
            port=port,
            startup_timeout=startup_timeout,
            shutdown_timeout=shutdown_timeout,
            die_with_parent=die_with_parent,
        )

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the server's unix socket (trust authentication)."""
        return self.root / "sock"

    @property
    def url(self) -> str:
        """``postgresql://USER:PASSWORD@HOST:PORT/DATABASE``."""
        return self.url_with_password(self.password)

    def url_with_password(self, password: str) -> str:
        """:attr:`url` with another password, e.g. a wrong one."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(self.database, safe='')}"
        )

    @property
    def superuser_url(self) -> str:
        """URL of the superuser, without password (trusted on loopback)."""
        superuser = quote(self.superuser, safe="")
        return f"postgresql://{superuser}@{self.host}:{self.port}/postgres"

    def _major_version(self) -> int:
        try:
            return int((self.data_dir / "PG_VERSION").read_text().split(".")[0])
        except (OSError, ValueError):
            return 0

    def _account(self) -> _Account | None:
        return self._run_as

    def _forget(self) -> None:
        self._initialised = False

    def _prepare(self) -> None:
        if self._initialised:
            return
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self._run_as is not None:
            os.chown(self.socket_dir, self._run_as.uid, self._run_as.gid)
        # A failed earlier attempt may have left a partial cluster behind.
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--auth",
                "trust",
                "--no-sync",
            ],
            "initdb",
        )
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "autovacuum": "off",
            "jit": "off",
            "huge_pages": "off",
            "shared_buffers": "32MB",
            "max_connections": "100",
            "logging_collector": "off",
            "log_destination": "stderr",
            "log_line_prefix": "%m [%p] ",
            "timezone": "UTC",
            "log_timezone": "UTC",
        }
        settings.update(self._settings)
        lines = [f"{key} = {_quote_literal(value)}" for key, value in settings.items()]
        # Appending to (rather than replacing) the files keeps their owner.
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# test server settings\n" + "\n".join(lines) + "\n")
        su = _quote_ident(self.superuser)
        with open(self.data_dir / "pg_hba.conf", "w") as hba:
            hba.write(
                "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
                "local   all       all            trust\n"
                f"host    all       {su}  {self.host}/32  trust\n"
                f"host    all       all   {self.host}/32  scram-sha-256\n"
            )
        self._initialised = True

    def _command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self._port),
        ]

    def _ready(self, proc: subprocess.Popen[bytes]) -> bool:
        # postmaster.pid line 8 says "ready" once connections are accepted
        # (this is what pg_ctl waits for); line 1 must be *this* server,
        # not a stale file left by a crash.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[0].strip() != str(proc.pid):
            return False
        return lines[7].strip() == "ready" and is_port_open(self.host, self._port)

    def _after_first_start(self) -> None:
        statements = [
            f"CREATE ROLE {_quote_ident(self.user)} LOGIN PASSWORD "
            f"{_quote_literal(self.password)}"
        ]
        if self.database not in ("postgres", "template0", "template1"):
            # FILE_COPY (PostgreSQL 15+) copies the template's files instead
            # of WAL-logging them: much faster with fsync off.
            strategy = " STRATEGY = FILE_COPY" if self._major_version() >= 15 else ""
            statements.append(
                f"CREATE DATABASE {_quote_ident(self.database)} "
                f"OWNER {_quote_ident(self.user)}{strategy}"
            )
        argv = [
            str(self._psql),
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--host",
            str(self.socket_dir),
            "--port",
            str(self._port),
            "--username",
            self.superuser,
            "--dbname",
            "postgres",
        ]
        for statement in statements:
            argv += ["--command", statement]
        self._run(argv, "creating the test role and database with psql", timeout=60)


# ------------------------------------------------------------------- redis


def _redis_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _resp(*parts: str) -> bytes:
    encoded = [part.encode() for part in parts]
    out = [b"*%d\r\n" % len(encoded)]
    out += [b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded]
    return b"".join(out)


def _redis_ping(host: str, port: int, password: str | None, timeout: float) -> bool:
    replies = 1 if password is None else 2
    request = (
        _resp("PING") if password is None else _resp("AUTH", password) + _resp("PING")
    )
    data = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            while data.count(b"\r\n") < replies:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    return data.endswith(b"+PONG\r\n")


class RedisServer(_ManagedServer):
    """A throwaway redis-server on a free loopback port.

    No persistence (``save ""``, ``appendonly no``); its working directory is
    private. With ``password`` set, every client must authenticate
    (``requirepass``) and a wrong password is rejected.

    :param base_dir: where to create the server's directory (system temp
        dir if omitted or unusable).
    :param password: ``requirepass`` value; None for no authentication.
    :param binary: the redis-server program; found by
        :func:`find_redis_server` if omitted.
    :param config: extra redis.conf directives (name to raw value).
    :raises BinaryNotFoundError: if redis-server is not installed.
    """

    kind = "redis"

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        password: str | None = None,
        host: str = LOOPBACK,
        port: int | None = None,
        db: int = 0,
        binary: str | os.PathLike[str] | None = None,
        config: Mapping[str, str] | None = None,
        startup_timeout: float = 15.0,
        shutdown_timeout: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        #: The redis-server program.
        self.binary = find_redis_server() if binary is None else Path(binary)
        if not _is_exe(self.binary):
            raise BinaryNotFoundError(str(self.binary), "apt-get install redis-server")
        #: ``requirepass`` value, or None.
        self.password = password
        #: Database number used in :attr:`url`.
        self.db = db
        self._config = dict(config or {})
        super().__init__(
            base_dir,
            host=host,
            port=port,
            startup_timeout=startup_timeout,
            shutdown_timeout=shutdown_timeout,
            die_with_parent=die_with_parent,
        )

    @property
    def url(self) -> str:
        """``redis://:PASSWORD@HOST:PORT/DB``, or without the password part."""
        return self.url_with_password(self.password)

    def url_with_password(self, password: str | None) -> str:
        """:attr:`url` with another password (None: none at all)."""
        auth = "" if password is None else f":{quote(password, safe='')}@"
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"

    @property
    def config_path(self) -> Path:
        """The generated redis.conf, rewritten at every start."""
        return self.root / "redis.conf"

    def _command(self) -> list[str]:
        directives = {
            "bind": self.host,
            "port": str(self._port),
            "protected-mode": "yes",
            "daemonize": "no",
            "supervised": "no",
            "save": '""',
            "appendonly": "no",
            "dir": _redis_quote(str(self.root)),
            "logfile": '""',
            "loglevel": "notice",
            "always-show-logo": "no",
        }
        if self.password is not None:
            directives["requirepass"] = _redis_quote(self.password)
        directives.update(self._config)
        text = "".join(f"{key} {value}\n" for key, value in directives.items())
        self.config_path.write_text(text)
        self.config_path.chmod(0o600)
        return [str(self.binary), str(self.config_path)]

    def _ready(self, proc: subprocess.Popen[bytes]) -> bool:
        return _redis_ping(self.host, self._port, self.password, timeout=0.25)


# --------------------------------------------------------------- black hole


class BlackHoleServer:
    """A TCP listener that accepts connections and never reads or answers.

    Clients connect fine, then wait forever for a reply: use it to check that
    timeouts fire. Listens from construction on; :meth:`close` (or leaving the
    ``with`` block) closes the listener and every held connection.

    :param host: address to listen on.
    :param backlog: listen backlog.
    """

    def __init__(self, host: str = LOOPBACK, *, backlog: int = 128) -> None:
        #: Address the listener is bound to.
        self.host = host
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._listener.bind((host, 0))
            self._listener.listen(backlog)
            self._listener.settimeout(0.05)
        except BaseException:
            self._listener.close()
            raise
        self._port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"blackhole-{self._port}", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The listening port."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return (self.host, self._port)

    @property
    def accepted(self) -> int:
        """How many connections have been accepted (and are held open)."""
        with self._lock:
            return len(self._held)

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._closing.is_set():
                    conn.close()
                    return
                self._held.append(conn)

    def close(self) -> None:
        """Stop accepting and close every connection. Idempotent."""
        self._closing.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._listener.close()
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()

    def __enter__(self) -> BlackHoleServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlackHoleServer {self.host}:{self._port} accepted={self.accepted}>"
