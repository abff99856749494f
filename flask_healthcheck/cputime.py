"""How much CPU a thread uses, or wants: the scheduler's ramp adds
threads for checks that wait (on I/O, a sleep, a lock), not for checks
that compute, which would only take turns at the GIL.

A thread's CPU time comes from its own clock (``time.pthread_getcpuclockid``,
Linux and the BSDs); the time it was ready to run but kept from a CPU by a
busy machine from Linux's ``/proc/self/task/<id>/schedstat``. Where
either is missing it reads as none: the thread counts as waiting.
"""

from __future__ import annotations

import os
import time

from .threads import get_ident


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
    yet it is no thread stuck on I/O. Files opened once per ramp."""

    def __init__(self) -> None:
        self._files: dict[int, int | None] = {}

    def seconds(self, native_id: int) -> float:
        if native_id not in self._files:
            try:
                fd: int | None = os.open(
                    f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY
                )
            except OSError:
                fd = None
            self._files[native_id] = fd
        fd = self._files[native_id]
        if fd is None:
            return 0.0
        try:
            return int(os.pread(fd, 64, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        for fd in self._files.values():
            if fd is not None:
                os.close(fd)
        self._files.clear()


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
