"""The files of the run directory, read and written safely: the lock file
that elects the refreshing process, and the hand-over note beside it.

No state lives here: which process holds what, and when to take over, is
:mod:`~flask_healthcheck.hostlock`'s job (its docstring says why each step
is done this way). Every function leaves nothing open and nothing locked
when it raises, follows no link it didn't make, and trusts no file another
user could have planted.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock, no election
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("flask_healthcheck")

#: ``(st_dev, st_ino)``: which file, whatever its name.
Identity = tuple[int, int]

#: Follows no link where the platform can say so.
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

#: A note is a status per check: more than this is no note of ours.
MAX_NOTE_BYTES = 1 << 20


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


def replace_stale(path: str, seen: tuple[int, int, int]) -> tuple[int, Identity] | None:
    """Rename a new locked file over the stale one at ``path``, if that one
    is still there, unchanged since ``seen`` (``st_dev``, ``st_ino``,
    ``st_mtime_ns``); one process at a time. The new file's locked
    descriptor and identity, or None if another process got there first."""
    assert fcntl is not None
    flags = os.O_RDWR | os.O_CREAT | NOFOLLOW
    guard = os.open(f"{path}.takeover", flags, 0o600)
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process is taking over right now
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None  # deleted: the next try locks a new file
        if (info.st_dev, info.st_ino, info.st_mtime_ns) != seen:
            return None  # it beat, or another process took over
        temporary = f"{path}.{os.getpid()}.new"
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        fd = os.open(temporary, flags | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_pid(fd)
            os.replace(temporary, path)
            return fd, identity(os.fstat(fd))
        except BaseException:
            close(fd)
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    finally:
        close(guard)


def held_by_live_process(directory: str, path: str, stale_after: float) -> bool:
    """True if a process holds the lock on ``path`` and has beaten within
    ``stale_after`` seconds (by the wall clock: one look can't watch a
    beat). False if nobody does, or the lock can't be trusted."""
    try:
        info = os.stat(directory)
        if info.st_mode & 0o022 or (
            hasattr(os, "getuid") and info.st_uid != os.getuid()
        ):
            return False  # anyone could hold it: don't let them silence us
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        try:
            # Shared: two processes asking never keep each other out.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return time.time() - info.st_mtime <= stale_after
        return False
    except OSError:
        return False
    finally:
        close(fd)  # and with it the shared lock


def write_note(path: str, note: dict[str, Any]) -> None:
    """Write ``note`` to ``path``, replaced at once, never half written,
    with this process's pid and parent's pid. A file that can't be
    written is skipped: a note only improves a hand-over."""
    data = {"pid": os.getpid(), "ppid": os.getppid(), "note": note}
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        try:
            os.unlink(temporary)  # a leftover, or a link planted there
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW
        with os.fdopen(os.open(temporary, flags, 0o600), "w") as f:
            json.dump(data, f)
        os.replace(temporary, path)
    except OSError as e:
        logger.debug("Could not write %s: %s", path, e)


def read_note(path: str) -> dict[str, Any] | None:
    """The note at ``path`` if a sibling of this process (another worker
    started by the same server process) wrote it, else None: this process
    knows its own past, and what an earlier server left is history."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW)
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


def identity(info: os.stat_result) -> Identity:
    """Which file ``info`` describes."""
    return info.st_dev, info.st_ino


def identity_at(path: str) -> Identity | None:
    """Which file is at ``path`` now; None if none is."""
    try:
        return identity(os.stat(path, follow_symlinks=False))
    except FileNotFoundError:
        return None


def write_pid(fd: int) -> None:
    """Who refreshes, for people (``cat`` the lock file). Only for them: a
    disk too full to write it elects the process all the same."""
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as e:
        logger.debug("Could not write the pid into the lock file: %s", e)


def close(fd: int) -> None:
    """Unlock and close ``fd``. Unlock explicitly: a copy of the descriptor
    in a child that has not closed it yet would otherwise keep the lock."""
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
