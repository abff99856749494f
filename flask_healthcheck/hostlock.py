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

What the lock survives (see ``docs/deploying.md``, "One refresher per host"):

- **An error after opening** (a full disk while the pid is written, say)
  never leaks a locked descriptor: whatever fails after ``open`` closes it,
  which unlocks it. The pid is for people only: a disk too full to write it
  still elects the process.
- **A lock file deleted** (``systemd-tmpfiles``, ``rm -r`` of the run
  directory): the next process to try locks a new file at the path. The
  holder compares, every interval, the file it has locked with the one at
  the path (``st_dev``/``st_ino`` of ``fstat(fd)`` and ``stat(path)``) and,
  if they differ, lets go and tries the path like any other process. After
  locking, a process makes the same comparison, so a file deleted between
  its ``open`` and its ``flock`` never elects it.
- **A frozen holder** (``SIGSTOP``, a VM paused): the holder beats by
  setting the lock file's mtime (``futimens``, which needs no free space)
  every interval, and from a small thread of its own six times per
  :attr:`HostLock.stale_after`, so a long run of checks never stops the
  beat. Each process that fails to take the lock notes the file's
  identity and mtime, and when they have not changed for
  :attr:`HostLock.stale_after` seconds of its own monotonic clock (three
  intervals) it takes over: it locks a new file and renames it over the
  path. The frozen holder, once it wakes, finds that its file is no longer
  the one at the path and steps down, as for a deleted file. Takeovers are
  serialised by a second lock file (``<name>.lock.takeover``), and the
  taker checks again under it that the stale file is still the one at the
  path, so two processes never both take over from one stale holder. The
  clock is only ever compared with itself: the mtime is a counter that
  must move, not a time, so a wall-clock step elects nobody.
- **Others asking** (``flask health``, ``health.run()``): a process that
  does not refresh learns whether a live holder exists with
  :meth:`HostLock.held_elsewhere`: a shared non-blocking ``flock`` fails,
  and the file's mtime is younger than :attr:`HostLock.stale_after` (a
  single look can only compare with the wall clock; if that is wrong it
  errs towards alerting).

Without ``fcntl`` (Windows) there is no election: every process refreshes.

This module decides who holds the lock; reading and writing the files
(safely, leaving nothing open) is :mod:`~flask_healthcheck.lockfile`'s job.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import lockfile, threads

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
    #: ``(st_dev, st_ino)`` of the locked file: the file at the path must
    #: still be this one.
    identity: lockfile.Identity
    #: The :class:`HostLock` objects of this process that hold it (their ``id``).
    holders: set[int] = field(default_factory=set)
    #: Set once ``fd`` is closed; guarded by ``beat_lock`` (an operating
    #: system lock, so the beat thread never waits on gevent's hub).
    closed: bool = False
    beat_lock: Any = field(default_factory=threads.allocate_lock)
    #: Set when the holding ends, so its beat thread stops at once.
    ended: threads.Event = field(default_factory=threads.Event)

    def close(self) -> None:
        """Close ``fd`` (which unlocks it) and stop the beat."""
        with self.beat_lock:
            if self.closed:
                return
            self.closed = True
            lockfile.close(self.fd)
        self.ended.set()


#: Guards :data:`_holdings`.
_guard = threading.Lock()
#: The lock files held by this process (or, after a fork, by its parent), by path.
_holdings: dict[str, _Holding] = {}
#: What this process last saw of each lock file another process holds:
#: ``(st_dev, st_ino, st_mtime_ns)``, and ``time.monotonic()`` when it changed.
_observed: dict[str, tuple[tuple[int, int, int], float]] = {}


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


class HostLock:
    """An exclusive lock on ``<directory>/<name>.lock``, held by at most one
    process of the host at a time.

    :param directory: ``HEALTHCHECK_RUN_DIR``; created (0700) on first use.
    :param name: the file's name without ``.lock``; what the processes of
        one app share.
    :param stale_after: seconds after which a holder that has not beaten
        counts as gone (frozen); see the module docstring.
    """

    def __init__(
        self, directory: str, name: str, stale_after: float = float("inf")
    ) -> None:
        # Resolved once: a link that is repointed later changes nothing.
        directory = os.path.realpath(directory)
        self.directory = directory
        self.path = os.path.join(directory, f"{name}.lock")
        #: What the holder leaves for the next one: see :meth:`write_note`.
        self.note_path = os.path.join(directory, f"{name}.json")
        #: Seconds without a beat after which the holder is taken over from.
        self.stale_after = stale_after
        #: Set once the lock could not be used, so the error is logged once.
        self._broken = False

    def acquire(self) -> bool:
        """Take the lock if no other process of the host holds it; never
        blocks. True if this process holds it now, and True too when the
        lock can't be used at all (no ``flock``, a run directory that is
        not safe): then every process refreshes, as without an election,
        rather than none.

        Called every interval by the refresher: a holder beats (see the
        module docstring) and checks that its file is still the one at the
        path; a process that is not the holder watches the holder's beat.
        """
        if fcntl is None:
            return True
        me = id(self)
        with _guard:
            holding = _holdings.get(self.path)
            if holding is not None and holding.pid == os.getpid():
                if self._still_ours(holding):
                    holding.holders.add(me)
                    return True
                # Deleted, or taken over from us while we were frozen: let
                # go, and try the path like any other process.
                logger.warning(
                    "The lock file %s was replaced or removed; this process"
                    " (%d) stops running the health checks unless it is elected"
                    " again.",
                    self.path,
                    os.getpid(),
                )
                del _holdings[self.path]
                holding.close()
            try:
                locked = self._lock()
            except OSError as e:
                if not self._broken:
                    self._broken = True
                    logger.error(
                        "Can't use %s to elect the process that runs the health"
                        " checks (%s); every process refreshes on its own until"
                        " it can. Set HEALTHCHECK_RUN_DIR to a directory of this"
                        " user's.",
                        self.path,
                        e,
                    )
                return True
            if self._broken:
                self._broken = False
                logger.info("%s elects the refreshing process again.", self.path)
            if locked is None:
                return False
            fd, identity = locked
            holding = _holdings[self.path] = _Holding(fd, os.getpid(), identity, {me})
        self._start_beating(holding)
        return True

    def _start_beating(self, holding: _Holding) -> None:
        """Beat from a thread of its own while ``holding`` lasts: the
        refresher beats only between runs, and a run may last as long as
        its slowest check."""
        every = self.stale_after / 6
        if not 0 < every < threading.TIMEOUT_MAX:
            return
        try:
            threads.start_thread(
                partial(_beat, holding, every), f"healthcheck-beat-{os.getpid()}"
            )
        except Exception as e:  # a pids limit: the refresher still beats
            logger.debug("No thread to beat %s: %s", self.path, e)

    def _still_ours(self, holding: _Holding) -> bool:
        """True if the file ``holding`` has locked is the one at the path;
        then beat. Under ``_guard``."""
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        if lockfile.identity(info) != holding.identity:
            return False
        try:
            # The heartbeat: an mtime that moves. Needs no free space.
            os.utime(holding.fd)
        except OSError as e:
            logger.debug("Could not touch %s: %s", self.path, e)
        return True

    def _lock(self) -> tuple[int, lockfile.Identity] | None:
        """The lock file's descriptor, locked, and its identity; None if
        another process holds it (then maybe take over from it, if stale).
        Nothing opened here is left open when this raises."""
        assert fcntl is not None
        lockfile.prepare_run_dir(self.directory)
        flags = os.O_RDWR | os.O_CREAT | lockfile.NOFOLLOW
        fd = os.open(self.path, flags, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = os.fstat(fd)
                lockfile.close(fd)
                return self._take_over_if_stale(info)
            identity = lockfile.identity(os.fstat(fd))
            if lockfile.identity_at(self.path) != identity:
                # Deleted or replaced between open and flock: not the lock.
                lockfile.close(fd)
                return None
            lockfile.write_pid(fd)
        except BaseException:
            lockfile.close(fd)  # closing unlocks: nothing stays locked by mistake
            raise
        _observed.pop(self.path, None)
        return fd, identity

    def _take_over_if_stale(
        self, info: os.stat_result
    ) -> tuple[int, lockfile.Identity] | None:
        """Note what the holder's file looks like; if it has not changed for
        :attr:`stale_after` seconds, replace it with a file locked here.
        Under ``_guard``."""
        seen = (info.st_dev, info.st_ino, info.st_mtime_ns)
        now = time.monotonic()
        previous = _observed.get(self.path)
        if previous is None or previous[0] != seen:
            _observed[self.path] = (seen, now)
            return None
        if now - previous[1] <= self.stale_after:
            return None
        taken = lockfile.replace_stale(self.path, seen)
        if taken is None:
            return None
        logger.warning(
            "The process holding %s has not refreshed for %.1f s (frozen?);"
            " process %d takes over.",
            self.path,
            self.stale_after,
            os.getpid(),
        )
        _observed.pop(self.path, None)
        return taken

    def held_elsewhere(self) -> bool:
        """True if another process of the host holds the lock and has
        beaten within :attr:`stale_after` seconds (by the wall clock: one
        look can't watch a beat). False if this process holds it, nobody
        does, or the lock can't be trusted: then the caller alerts."""
        if fcntl is None:
            return False
        holding = _holdings.get(self.path)
        if holding is not None and holding.pid == os.getpid():
            return False
        return lockfile.held_by_live_process(
            self.directory, self.path, self.stale_after
        )

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
            holding.close()

    # -- handing over ---------------------------------------------------------

    def write_note(self, note: dict[str, Any]) -> None:
        """Leave ``note`` for the process that holds the lock next (replaced
        at once, never half written). Only the holder writes it; a file
        that can't be written is skipped: it only improves a hand-over."""
        if not self.held:
            return  # without the lock, the run directory may not be ours
        holding = _holdings.get(self.path)
        if holding is None or lockfile.identity_at(self.path) != holding.identity:
            return  # taken over while frozen: the new holder's note wins
        lockfile.write_note(self.note_path, note)

    def read_note(self) -> dict[str, Any] | None:
        """The note the previous holder left, if that was a sibling of this
        process (another worker started by the same server process), else
        None: this process knows its own past, and what an earlier server
        left is history."""
        if not self.held:
            return None  # anyone could have written a note we can't vouch for
        return lockfile.read_note(self.note_path)


def _beat(holding: _Holding, every: float) -> None:
    """Set the held file's mtime every ``every`` seconds until the holding
    ends (see the module docstring). Logs nothing: see :mod:`.threads`."""
    while not holding.ended.wait(every):
        with holding.beat_lock:
            if holding.closed or holding.pid != os.getpid():
                return
            try:
                os.utime(holding.fd)
            except OSError:
                pass
