"""Threads grow with checks that are stuck, not with checks that are queued.

A run hands its checks to one pool thread, and adds threads only while
the running ones are not burning CPU (they wait on I/O, a sleep, a lock),
or none has finished for a while (issue 20).
What is asserted here are counts and orders, never times: quick checks
share a thread, stuck ones each get one (so a hung check never holds the
others back), CPU-bound ones don't get a thread each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask

import flask_healthcheck.scheduler
from flask_healthcheck import HealthCheck, HealthReport
from flask_healthcheck.cputime import RunQueueWaits
from flask_healthcheck.signals import health_checked
from flask_healthcheck.state import get_state

from .helpers import burn, run, wait_for

#: A timeout no check here comes near, unless it is meant to.
TIMEOUT = 10.0


def add_a_spinner_and_five_trivial_checks(
    health: HealthCheck, release: threading.Event, timeout: float
) -> None:
    """A check that spins until ``release``, then five quick ones that
    queue behind it."""

    def spins() -> bool:
        while not release.is_set():
            pass
        return True

    health.add_check(spins, name="spins", timeout=timeout)
    for i in range(5):
        health.add_check(lambda: True, name=f"trivial{i}")


def threads_of(app: Flask) -> int:
    """The pool threads the app has started and that have not exited (a
    thread idles for a minute before it does): the most it used at once."""
    return get_state(app).runner.pool.thread_count


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT)
    return HealthCheck(app)


#: A process that keeps one CPU busy, for a minute at most (it outlives
#: no test run by long, whatever happens to the test).
SPIN = (
    "import os, time\n"
    "os.sched_setaffinity(0, {%d})\n"
    "end = time.monotonic() + 60\n"
    "while time.monotonic() < end: pass\n"
)


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """This thread, and the threads it starts meanwhile, run on two CPUs
    (one if there is only one) kept busy by two processes each (a load of
    4 on 2 cores, whatever the machine's size): a thread that computes
    spends most of its time kept from a CPU, and so looks at times like
    one that waits."""
    if not hasattr(os, "sched_setaffinity") or not os.path.exists(
        f"/proc/self/task/{threading.get_native_id()}/schedstat"
    ):
        pytest.skip("needs Linux (CPU affinity, schedstat)")
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[:2]
    spinners = [
        subprocess.Popen([sys.executable, "-c", SPIN % cpu])
        for cpu in cpus
        for _ in range(2)
    ]
    try:
        os.sched_setaffinity(0, cpus)
        yield
    finally:
        os.sched_setaffinity(0, before)
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def test_a_thousand_trivial_checks_run_on_a_handful_of_threads(
    app: Flask, health: HealthCheck
) -> None:
    """Issue 20: the ramp doubled the threads every millisecond while checks
    were queued, so 1,000 trivial checks started 450 of them."""
    for i in range(1000):
        health.add_check(lambda: True, name=f"trivial{i}")
    for _ in range(3):
        assert run(app, health).status == "pass"
    assert threads_of(app) <= 8


def test_checks_that_wait_each_get_a_thread(app: Flask, health: HealthCheck) -> None:
    """Ten checks that can only pass together (each waits for all the
    others to have begun): they ran at once, on ten threads."""
    together = threading.Barrier(10)
    for i in range(10):
        health.add_check(lambda: together.wait(TIMEOUT / 2) >= 0, name=f"waits{i}")
    report = run(app, health)
    assert [r.status for r in report.checks] == ["pass"] * 10
    assert threads_of(app) == 10


def test_sleeping_checks_run_concurrently(app: Flask, health: HealthCheck) -> None:
    """Each of ten checks sleeping 0.5 s began before the first ended: the
    run costs one sleep, not ten."""
    began: list[float] = []
    ended: list[float] = []

    def sleeps() -> None:
        began.append(time.monotonic())
        time.sleep(0.5)
        ended.append(time.monotonic())

    for i in range(10):
        health.add_check(sleeps, name=f"sleeps{i}")
    assert run(app, health).status == "pass"
    assert max(began) < min(ended)


def test_a_hung_check_lets_the_others_run_meanwhile(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    running = threading.Event()

    def hung() -> None:
        running.set()
        release.wait(TIMEOUT)

    # First in line: the run's first thread takes it and hangs.
    health.add_check(hung, name="hung", timeout=2.0)
    for i in range(50):
        health.add_check(
            lambda: running.is_set() and not release.is_set(), name=f"trivial{i}"
        )
    report = run(app, health)
    first, *others = report.checks
    assert (first.status, first.error) == ("fail", "timed out after 2 s")
    assert [r.status for r in others] == ["pass"] * 50
    # One thread hung, few for the fifty.
    assert threads_of(app) <= 8


def test_cpu_bound_checks_dont_get_a_thread_each(
    app: Flask, health: HealthCheck
) -> None:
    """More threads would only take turns at the GIL, with the app's
    request threads too: the checks share one."""
    for i in range(10):
        health.add_check(burn(0.02), name=f"cpu{i}")
    assert run(app, health).status == "pass"
    assert threads_of(app) <= 2


def test_on_a_busy_machine_cpu_bound_checks_still_share_a_thread(
    app: Flask, health: HealthCheck, busy_machine: None
) -> None:
    """Issue 20: with the CPUs busy, a thread that computes, woken after a
    turn of the GIL and kept from a CPU since, had neither used nor (as
    Linux counts) waited for one: it read as stuck, and threads doubled;
    and checks that took longer only for want of a CPU looked like ones
    that spin. Ten checks got 4 to 10 threads."""
    for i in range(10):
        health.add_check(burn(0.05), name=f"cpu{i}")
    assert run(app, health).status == "pass"
    assert threads_of(app) <= 2


def test_a_check_that_spins_holds_the_others_back_for_a_while_only(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    """A check stuck in a loop burns CPU: after a patience, the checks
    waiting behind it get a thread of their own all the same."""
    add_a_spinner_and_five_trivial_checks(health, release, timeout=1.0)
    first, *others = run(app, health).checks
    assert (first.status, first.error) == ("fail", "timed out after 1 s")
    assert [r.status for r in others] == ["pass"] * 5


def test_without_thread_clocks_checks_that_wait_still_get_threads(
    app: Flask, health: HealthCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a thread's CPU time can't be read, running checks count as
    waiting: stuck ones get threads, quick ones still share one."""
    monkeypatch.setattr(flask_healthcheck.scheduler, "own_clock", lambda: None)
    together = threading.Barrier(5)
    for i in range(5):
        health.add_check(lambda: together.wait(TIMEOUT / 2) >= 0, name=f"waits{i}")
    for i in range(200):
        health.add_check(lambda: True, name=f"trivial{i}")
    assert run(app, health).status == "pass"
    assert threads_of(app) <= 5 + 8


@pytest.mark.parametrize("machine", ["as it is", "busy"])
def test_the_refresher_runs_cpu_bound_checks_on_few_threads(
    app: Flask, request: pytest.FixtureRequest, machine: str
) -> None:
    """In the background a thread is added for checks that burn CPU only
    once per quarter of their timeout (at most 2.5 s): they take one thread
    from the app's requests, not one each, also on a machine whose CPUs
    are all busy (issue 20: 5 threads there)."""
    if machine == "busy":
        request.getfixturevalue("busy_machine")
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, HEALTHCHECK_INTERVAL=0.5)
    health = HealthCheck(app)
    for i in range(10):
        health.add_check(burn(0.05), name=f"cpu{i}")
    reports: list[HealthReport] = []
    with health_checked.connected_to(lambda app, report: reports.append(report), app):
        health.start(app)
        wait_for(lambda: len(reports) >= 2, 3 * TIMEOUT, "the refresher never ran")
        get_state(app).refresher.stop(timeout=TIMEOUT)
    assert all(report.status == "pass" for report in reports)
    assert threads_of(app) <= 2


def test_in_the_background_a_check_that_spins_holds_the_others_back_for_a_while(
    app: Flask, release: threading.Event
) -> None:
    app.config.update(HEALTHCHECK_TIMEOUT=TIMEOUT, HEALTHCHECK_INTERVAL=60)
    health = HealthCheck(app)
    add_a_spinner_and_five_trivial_checks(health, release, timeout=2.0)
    reports: list[HealthReport] = []
    with health_checked.connected_to(lambda app, report: reports.append(report), app):
        health.start(app)
        wait_for(lambda: len(reports) >= 1, 3 * TIMEOUT, "the refresher never ran")
        get_state(app).refresher.stop(timeout=0)
    first, *others = reports[0].checks
    assert (first.status, first.error) == ("fail", "timed out after 2 s")
    assert [r.status for r in others] == ["pass"] * 5


def test_a_chain_of_cpu_bound_checks_holds_the_others_back_for_a_while_only(
    app: Flask, health: HealthCheck
) -> None:
    """Checks that each burn CPU for less than the patience make progress,
    yet together they must not keep a check queued behind them from a
    thread until its timeout: a check's time runs from the start of the
    run, not from when a thread takes it."""
    for i in range(20):
        health.add_check(burn(0.1), name=f"cpu{i}")
    health.add_check(lambda: True, name="queued", timeout=1.0)
    report = run(app, health)
    assert [r.status for r in report.checks] == ["pass"] * 21, report.checks[-1]


def test_a_thread_reads_ready_to_run_while_it_runs_not_while_it_waits(
    release: threading.Event,
) -> None:
    """What the ramp reads to tell a thread kept from a CPU (not yet in
    Linux's schedstat) from one stuck on I/O; where it can't be read, a
    thread counts as waiting."""
    if not os.path.exists(f"/proc/self/task/{threading.get_native_id()}/stat"):
        pytest.skip("needs Linux (/proc/self/task)")
    waiting: list[int] = []

    def waits_for_release() -> None:
        waiting.append(threading.get_native_id())
        release.wait()

    waiter = threading.Thread(target=waits_for_release)
    waiter.start()
    waits = RunQueueWaits()
    try:
        wait_for(lambda: bool(waiting), TIMEOUT, "the thread never began")
        wait_for(
            lambda: not waits.ready(waiting[0]), TIMEOUT, "the thread never waited"
        )
        assert waits.ready(threading.get_native_id())
        release.set()
        waiter.join(TIMEOUT)
        # Gone (once the system has ended it too, a little after join).
        wait_for(lambda: not waits.ready(waiting[0]), TIMEOUT, "still ready")
    finally:
        release.set()
        waits.close()


def test_a_ramp_over_hundreds_of_stuck_checks_keeps_few_files_open(
    app: Flask, health: HealthCheck
) -> None:
    """The ramp kept two /proc files open per thread it looked at, for the
    whole ramp: 200 stuck checks held 128 of the process's descriptors,
    300 all 250 it had left under a limit of 256 (the app's accept() and
    connects then fail)."""
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs Linux (/proc/self/fd)")
    counting = threading.Lock()

    def open_files() -> int:
        with counting:  # one listing at a time: one descriptor of its own
            return len(os.listdir("/proc/self/fd"))

    together = threading.Barrier(200)
    seen: list[int] = []

    def waits() -> bool:
        seen.append(open_files())
        return together.wait(TIMEOUT / 2) >= 0

    for i in range(200):
        health.add_check(waits, name=f"waits{i}")
    before = open_files()
    report = run(app, health)
    assert [r.status for r in report.checks] == ["pass"] * 200
    assert max(seen) - before <= 64, (before, max(seen))


def test_a_check_queued_behind_spinning_ones_begins_by_a_quarter_of_its_timeout(
    app: Flask, health: HealthCheck, release: threading.Event
) -> None:
    """Six checks that spin (timeout 1 s) ahead of one that sleeps 1 s
    (timeout 2 s): each spinner held the next back for a patience, so the
    sleeper began after 1.5 s (on a busy machine, a quarter of the shortest
    timeout each) and timed out; begun by 0.5 s, it has time to pass."""

    def spins() -> bool:
        while not release.is_set():
            pass
        return True

    def sleeps() -> bool:
        time.sleep(1.0)
        return True

    for i in range(6):
        health.add_check(spins, name=f"spins{i}", timeout=1.0)
    health.add_check(sleeps, name="sleeps", timeout=2.0)
    try:
        report = run(app, health)
    finally:
        release.set()
    assert report.checks[-1].status == "pass", report.checks[-1].error
