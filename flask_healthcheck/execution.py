"""One run of one check in flight, and waiting for it with a deadline:
what the runner, the scheduler and the section runner share."""

from __future__ import annotations

import _thread
import time

from .checks import Check, CheckResult
from .threads import Event


class Execution:
    """One run of one check, shared by every request that joins it."""

    __slots__ = (
        "check",
        "timeout",
        "started",
        "deadline",
        "result",
        "joined",
        "runs",
        "queued_on",
    )

    def __init__(self, check: Check, timeout: float, now: float) -> None:
        self.check = check
        self.timeout = timeout
        # What begin(now) sets, set here: one is made per check per run.
        self.started = now
        self.deadline = now + timeout
        #: Run inline, the thread it waits on until it begins: a run asked
        #: for by a check before it on that thread runs it instead of
        #: waiting for it (it would wait for itself).
        self.queued_on: int | None = None
        #: Set once, under the runner's lock: by the thread that ran the
        #: check, or by a request that gave up on it at its deadline.
        self.result: CheckResult | None = None
        #: Set when ``result`` is; made by the first request that has to wait.
        self.joined: Event | None = None
        #: Runs waiting for it, each to record its result when it ends (the
        #: runner's count, under its lock): none left, its thread does.
        self.runs = 0

    def begin(self, now: float) -> Execution:
        """Count the check's time from ``now`` (``time.monotonic()``)."""
        self.started = now
        self.deadline = now + self.timeout
        self.queued_on = None
        return self


def wait(execution: Execution, lock: _thread.LockType) -> None:
    """Wait until ``execution`` has its result or its deadline has passed
    (read again on waking: a check run inline begins late). The first to
    wait makes the event its result sets, under ``lock``, the one that
    result is set under (the runner's or the section runner's)."""
    if execution.result is None:
        with lock:
            if execution.result is None and execution.joined is None:
                execution.joined = Event()
    joined = execution.joined
    if joined is None:
        return
    while execution.result is None:
        left = execution.deadline - time.monotonic()
        if left <= 0 or joined.wait(left):
            return
