"""One process per host: the lock that elects the process that refreshes.

A pre-fork server runs an app in several worker processes. With the
background refresh on, each would run every check every interval and send
every alert: eight workers, eight runs, eight pages. Instead the workers of
one host take turns holding an exclusive, non-blocking ``flock`` on a file
in ``HEALTHCHECK_RUN_DIR``: the process holding it refreshes, the others
try again every interval. The kernel frees the lock when its process dies,
however it dies (``SIGKILL`` and the OOM killer included), so another
worker takes over within one interval.

Two things about ``flock`` shape this module:

- The lock belongs to an *open file*, not to a process. A forked child
  inherits the open file and with it the lock: it must never think it
  holds it, nor release it (that would release the parent's). So each
  process opens the file itself; a child closes what it inherited, and a
  holding is only trusted in the process that made it.
- Two opens of one file conflict even within one process. So the apps of
  one process that share a lock file (one app factory called twice) share
  one holding: the process holds the lock for all of them or for none.

Without ``fcntl`` (Windows) there is no election: every process refreshes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass, field
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock, no election
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("flask_healthcheck")


@dataclass
class _Holding:
    """A lock file this process holds."""

    fd: int
    pid: int
    #: The :class:`HostLock` objects of this process that hold it (their ``id``).
    holders: set[int] = field(default_factory=set)


#: Follows no link where the platform can say so.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

#: A note is a status per check: more than this is no note of ours.
MAX_NOTE_BYTES = 1 << 20

#: Guards :data:`_holdings`.
_guard = threading.Lock()
#: The lock files held by this process (or, after a fork, by its parent), by path.
_holdings: dict[str, _Holding] = {}


def lock_name(import_name: str, url: str, root_path: str = "") -> str:
    """The name of an app's lock file: readable, and unique per import name,
    app folder and health URL, so two apps on one host never share one
    (two services that are both ``app:app`` live in different folders), and
    the workers of one app always do. ``myapp-3f2a9c1b7d4e`` for ``myapp``."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", import_name)[:40]
    key = f"{import_name}\0{root_path}\0{url}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


def forget_inherited() -> None:
    """In a forked child: close the lock files inherited from the parent
    without unlocking them (that would free the parent's lock). Called by
    the fork handling in :mod:`~flask_healthcheck.background`."""
    global _guard
    _guard = threading.Lock()  # a thread of the parent may have held it
    pid = os.getpid()
    for path, holding in list(_holdings.items()):
        if holding.pid != pid:
            del _holdings[path]
            try:
                os.close(holding.fd)
            except OSError:
                pass


def prepare_run_dir(directory: str) -> None:
    """Create ``directory`` (mode 0700) unless it exists, and make sure no
    other user could hold our locks or swap our files: it must be a
    directory of this user's, writable by nobody else.

    :raises OSError: if it can't be created or is not safe to use.
    """
    os.makedirs(directory, mode=0o700, exist_ok=True)
    link = os.lstat(directory)
    if stat.S_ISLNK(link.st_mode) and hasattr(os, "getuid"):
        # Another user may plant a link where our directory should be, and
        # point it elsewhere later: only a link of our own is followed.
        if link.st_uid != os.getuid():
            raise PermissionError(
                f"{directory} is a link made by another user (uid {link.st_uid})"
            )
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{directory} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(
            f"{directory} belongs to another user (uid {info.st_uid}), who could"
            f" hold the lock"
        )
    if info.st_mode & 0o022:
        raise PermissionError(
            f"{directory} is writable by other users (mode"
            f" {stat.S_IMODE(info.st_mode):o}), who could hold the lock"
        )


class HostLock:
    """An exclusive lock on ``<directory>/<name>.lock``, held by at most one
    process of the host at a time.

    :param directory: ``HEALTHCHECK_RUN_DIR``; created (0700) on first use.
    :param name: the file's name without ``.lock``; what the processes of
        one app share.
    """

    def __init__(self, directory: str, name: str) -> None:
        # Resolved once: a link that is repointed later changes nothing.
        directory = os.path.realpath(directory)
        self.directory = directory
        self.path = os.path.join(directory, f"{name}.lock")
        #: What the holder leaves for the next one: see :meth:`write_note`.
        self.note_path = os.path.join(directory, f"{name}.json")
        #: Set once the lock could not be used, so the error is logged once.
        self._broken = False

    def acquire(self) -> bool:
        """Take the lock if no other process of the host holds it; never
        blocks. True if this process holds it now, and True too when the
        lock can't be used at all (no ``flock``, a run directory that is
        not safe): then every process refreshes, as without an election,
        rather than none.
        """
        if fcntl is None:
            return True
        me = id(self)
        with _guard:
            holding = _holdings.get(self.path)
            if holding is not None and holding.pid == os.getpid():
                holding.holders.add(me)
                return True
            try:
                fd = self._lock()
            except OSError as e:
                if not self._broken:
                    self._broken = True
                    logger.error(
                        "Can't use %s to elect the process that runs the health"
                        " checks (%s); every process refreshes on its own. Set"
                        " HEALTHCHECK_RUN_DIR to a directory of this user's.",
                        self.path,
                        e,
                    )
                return True
            if fd is None:
                return False
            _holdings[self.path] = _Holding(fd, os.getpid(), {me})
            return True

    def _lock(self) -> int | None:
        """The lock file's descriptor, locked; None if another process holds it."""
        assert fcntl is not None
        prepare_run_dir(self.directory)
        flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW
        fd = os.open(self.path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # Who refreshes, for people: ``cat`` the lock file.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd

    @property
    def held(self) -> bool:
        """True if this object holds the lock in this process."""
        holding = _holdings.get(self.path)
        return (
            holding is not None
            and holding.pid == os.getpid()
            and id(self) in holding.holders
        )

    def release(self) -> None:
        """Let go of the lock; the process unlocks the file once none of its
        apps holds it. Does nothing unless this object holds it here."""
        if fcntl is None:
            return
        with _guard:
            holding = _holdings.get(self.path)
            if holding is None or holding.pid != os.getpid():
                return
            holding.holders.discard(id(self))
            if holding.holders:
                return
            del _holdings[self.path]
            try:
                # Unlock explicitly: a copy of the descriptor in a child that
                # has not closed it yet would otherwise keep the lock.
                fcntl.flock(holding.fd, fcntl.LOCK_UN)
            finally:
                os.close(holding.fd)

    # -- handing over ---------------------------------------------------------

    def write_note(self, note: dict[str, Any]) -> None:
        """Leave ``note`` for the process that holds the lock next (replaced
        at once, never half written). Only the holder writes it; a file
        that can't be written is skipped: it only improves a hand-over."""
        if not self.held:
            return  # without the lock, the run directory may not be ours
        data = {"pid": os.getpid(), "ppid": os.getppid(), "note": note}
        temporary = f"{self.note_path}.{os.getpid()}.tmp"
        try:
            try:
                os.unlink(temporary)  # a leftover, or a link planted there
            except FileNotFoundError:
                pass
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
            with os.fdopen(os.open(temporary, flags, 0o600), "w") as f:
                json.dump(data, f)
            os.replace(temporary, self.note_path)
        except OSError as e:
            logger.debug("Could not write %s: %s", self.note_path, e)

    def read_note(self) -> dict[str, Any] | None:
        """The note the previous holder left, if that was a sibling of this
        process (another worker started by the same server process), else
        None: this process knows its own past, and what an earlier server
        left is history."""
        if not self.held:
            return None  # anyone could have written a note we can't vouch for
        try:
            fd = os.open(self.note_path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # a FIFO or a device planted there
            text = os.read(fd, MAX_NOTE_BYTES + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        if len(text) > MAX_NOTE_BYTES:
            return None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("note"), dict):
            return None
        if data.get("pid") == os.getpid() or data.get("ppid") != os.getppid():
            return None
        note: dict[str, Any] = data["note"]
        return note
