"""How much CPU a thread uses, or wants: the scheduler's ramp adds
threads for checks that wait (on I/O, a sleep, a lock), not for checks
that compute, which would only take turns at the GIL.

A thread's CPU time comes from its own clock (``time.pthread_getcpuclockid``,
Linux and the BSDs); the time it was ready to run but kept from a CPU by a
busy machine from Linux's ``/proc/self/task/<id>/schedstat``, and whether
it is ready to run now from ``/proc/self/task/<id>/stat``. Where either is
missing it reads as none: the thread counts as waiting.
"""

from __future__ import annotations

import os
import time

from .threads import get_ident

#: The files a ramp keeps open to read again (each one read is closed
#: after it beyond these): hundreds of stuck checks, two files a thread,
#: would hold the descriptors the app's sockets need.
MAX_OPEN_FILES = 32


def own_clock() -> int | None:
    """The CPU-time clock of the calling thread, or None where threads
    have none (not Linux or a BSD). Asked by the thread itself: a clock id
    is safe to read once its thread has gone (an ``OSError``), a thread id
    is not."""
    try:
        return time.pthread_getcpuclockid(get_ident())
    except (AttributeError, OSError):
        return None


class RunQueueWaits:
    """How long threads have waited for a CPU while ready to run (Linux's
    ``/proc/self/task/<id>/schedstat``; 0 elsewhere): on a machine whose
    CPUs are all busy, a thread kept from running uses no CPU time either,
    yet it is no thread stuck on I/O. Files opened once per ramp (up to
    :data:`MAX_OPEN_FILES`, the others each time they are read)."""

    def __init__(self) -> None:
        self._files: dict[tuple[int, str], int | None] = {}
        self._open = 0

    def _read(self, native_id: int, name: str, size: int) -> bytes:
        """The start of the thread's file ``name``; empty if unreadable."""
        key = (native_id, name)
        if key in self._files:
            fd = self._files[key]
            return b"" if fd is None else _pread(fd, size)
        try:
            fd = os.open(f"/proc/self/task/{native_id}/{name}", os.O_RDONLY)
        except OSError:
            self._files[key] = None
            return b""
        if self._open < MAX_OPEN_FILES:
            self._files[key] = fd
            self._open += 1
            return _pread(fd, size)
        try:
            return _pread(fd, size)
        finally:
            os.close(fd)

    def seconds(self, native_id: int) -> float:
        try:
            return int(self._read(native_id, "schedstat", 64).split()[1]) / 1e9
        except (ValueError, IndexError):
            return 0.0

    def ready(self, native_id: int) -> bool:
        """True if the thread is running or ready to run (state ``R``).
        Linux adds the time a thread waits for a CPU to its schedstat only
        once it gets one: on a busy machine a thread that computes, woken
        after a turn of the GIL and kept from a CPU for milliseconds since,
        has neither used nor (yet) waited any time, like a thread stuck on
        I/O, which sleeps (``S``)."""
        stat = self._read(native_id, "stat", 512)
        end = stat.rfind(b")")  # of the name, which may hold one too
        return end >= 0 and stat[end + 2 : end + 3] == b"R"

    def close(self) -> None:
        for fd in self._files.values():
            if fd is not None:
                os.close(fd)
        self._files.clear()
        self._open = 0


def _pread(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of ``fd``; empty once its thread is gone."""
    try:
        return os.pread(fd, size, 0)
    except OSError:
        return b""


def busy_times(clocks: dict[int, int], waits: RunQueueWaits) -> dict[int, float]:
    """The seconds each thread of ``clocks`` has used a CPU or waited for
    one; a thread that has ended is left out."""
    times = {}
    for clock, native_id in clocks.items():
        try:
            times[clock] = time.clock_gettime(clock) + waits.seconds(native_id)
        except OSError:
            pass
    return times


def any_ready(clocks: dict[int, int], waits: RunQueueWaits) -> bool:
    """True if a thread of ``clocks`` is running or ready to run now (see
    :meth:`RunQueueWaits.ready`): it computes, or would, so it is not stuck."""
    return any(waits.ready(native_id) for native_id in clocks.values())


def run_queue_waits(clocks: dict[int, int], waits: RunQueueWaits) -> dict[int, float]:
    """The seconds each thread of ``clocks`` has waited for a CPU."""
    return {clock: waits.seconds(native_id) for clock, native_id in clocks.items()}


def kept_since(
    before: dict[int, float], clocks: dict[int, int], waits: RunQueueWaits
) -> float:
    """The seconds the threads of ``clocks`` have waited for a CPU since
    ``before`` (:func:`run_queue_waits`), between them."""
    return sum(
        waits.seconds(native_id) - before[clock]
        for clock, native_id in clocks.items()
        if clock in before
    )
