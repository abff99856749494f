"""The host lock survives its faults: a full disk, a deleted lock file, a
holder killed mid-delivery or frozen, processes that don't refresh, a
thread that can't start, and a wall-clock step.

Other processes are real ones (``tests/hostlocks.py``): small programs that
hold a lock file, or run an app with the background refresh and note each
alert they send in a file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, signals
from flask_healthcheck.contrib.prometheus import init_prometheus
from flask_healthcheck.history import History
from flask_healthcheck.hostlock import HostLock, lock_name
from flask_healthcheck.state import get_state

from .gunicorn import StartGunicorn
from .helpers import Counted, app_module, bounded, configured_health, wait_for
from .hostlocks import ALERTING, OtherProcess, RefreshingProcess, taken_elsewhere
from .test_election import Recorder

INTERVAL = 0.3


@pytest.fixture
def run_dir(tmp_path: Path) -> str:
    return str(tmp_path / "run")


# -- a full disk ---------------------------------------------------------------


class SmallDisk:
    """A run directory on a file system that can be filled and freed: a
    64 kB tmpfs when the tests run as root, else one whose writes fail
    with ``ENOSPC`` while it is "full" (injected)."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        path.mkdir(mode=0o700)
        self.mounted = False
        self.full = False
        if os.geteuid() == 0:
            result = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", path],
                capture_output=True,
                timeout=10,
            )
            self.mounted = result.returncode == 0
        if not self.mounted:
            write = os.write

            def full_write(fd: int, data: Any) -> int:
                if self.full:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return write(fd, data)

            monkeypatch.setattr(os, "write", full_write)

    def fill(self) -> None:
        self.full = True
        if self.mounted:
            with open(self.path / "filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError as e:
                    assert e.errno == errno.ENOSPC

    def free(self) -> None:
        self.full = False
        if self.mounted:
            (self.path / "filler").unlink()

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], timeout=10, check=False)


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "small", monkeypatch)
    try:
        yield disk
    finally:
        disk.unmount()


def test_a_full_disk_still_elects_one_process(small_disk: SmallDisk) -> None:
    """Writing the pid fails with ENOSPC after ``flock``: the process is
    elected all the same, nothing stays locked once it lets go, and
    another process's lock keeps it out (old main leaked the descriptor:
    nobody was elected again)."""
    lock = HostLock(str(small_disk.path), "app")
    small_disk.fill()
    assert lock.acquire() and lock.held, "a full disk elects the process"
    assert taken_elsewhere(lock.path)
    assert lock.acquire(), "and it stays elected"
    lock.release()
    assert not taken_elsewhere(lock.path), "nothing leaked"
    other = OtherProcess(lock.path)
    try:
        assert not lock.acquire() and not lock.held
    finally:
        other.leave()
    small_disk.free()
    assert lock.acquire() and lock.held
    assert Path(lock.path).read_text() == f"{os.getpid()}\n"
    lock.release()


DISK_APP = (
    app_module(INTERVAL=INTERVAL, TIMEOUT=0.5, RUN_DIR='os.environ["RUN_DIR"]')
    + """health.add_check(lambda: False, name="database")


@signals.check_failed.connect_via(app)
def failed(sender, result):
    with open(here / "signals", "a") as f:
        f.write(f"{os.getpid()} {time.time():.3f} check_failed\\n")


health.start(app)
"""
)


@pytest.mark.slow
def test_a_full_disk_under_gunicorn(
    small_disk: SmallDisk, gunicorn_server: StartGunicorn
) -> None:
    """Three gunicorn workers, the run directory on a full tmpfs, then
    freed: one worker alerts every interval throughout (old main: the
    first worker leaked its locked descriptor and nobody alerted again)."""
    if not small_disk.mounted:
        pytest.skip("needs root, to mount a tmpfs the workers share")
    small_disk.fill()
    server = gunicorn_server(DISK_APP, workers=3, env={"RUN_DIR": str(small_disk.path)})

    def alerts(seconds: float) -> list[int]:
        begin = time.time()
        time.sleep(seconds)
        lines = (server.directory / "signals").read_text().splitlines()
        return [
            int(pid)
            for pid, when, _ in map(str.split, lines)
            if begin <= float(when) < begin + seconds
        ]

    time.sleep(1)  # every worker has tried the lock
    full = alerts(6)
    small_disk.free()
    freed = alerts(6)
    print(
        f"\nfull disk: {len(full)} alerts in 6 s from {len(set(full))} worker(s);"
        f" freed: {len(freed)} in 6 s from {len(set(freed))}"
    )
    for window in (full, freed):
        assert len(set(window)) == 1, window
        assert len(window) >= 10, window  # about 20 due


def test_an_error_after_opening_closes_the_lock_file(
    run_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails after ``open`` closes the descriptor (and with it the
    lock): every process refreshes while it lasts, and the election resumes
    once it stops."""
    lock = HostLock(run_dir, "app")
    fstat = os.fstat
    monkeypatch.setattr(
        os, "fstat", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "EIO"))
    )
    assert lock.acquire() and not lock.held  # every process refreshes
    assert not taken_elsewhere(lock.path), "the lock file was left locked"
    monkeypatch.setattr(os, "fstat", fstat)
    assert lock.acquire() and lock.held
    assert taken_elsewhere(lock.path)
    lock.release()


# -- a deleted lock file -------------------------------------------------------


def test_a_deleted_lock_file_is_noticed_by_its_holder(run_dir: str) -> None:
    lock = HostLock(run_dir, "app")
    assert lock.acquire()
    os.unlink(lock.path)  # a temp cleaner
    other = OtherProcess(lock.path)  # locks the new file at the path
    try:
        assert not lock.acquire(), "two holders: every alert twice"
        assert not lock.held
    finally:
        other.leave()
    assert lock.acquire() and lock.held
    shutil.rmtree(run_dir)  # the whole run directory this time
    assert lock.acquire() and lock.held
    assert taken_elsewhere(lock.path), "this process holds the file at the path"
    lock.release()


# -- the refreshing worker killed mid-delivery ---------------------------------


def read_signals(directory: Path) -> list[tuple[int, list[str]]]:
    path = directory / "signals"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        pid, _, *words = line.split()
        lines.append((int(pid), words))
    return lines


def alert_times(directory: Path, pid: int) -> list[float]:
    """When the process ``pid`` sent each ``check_failed``."""
    path = directory / "signals"
    times = []
    for line in path.read_text().splitlines():
        who, when, what, *_ = line.split()
        if int(who) == pid and what == "check_failed":
            times.append(float(when))
    return times


def holder_pid(directory: Path) -> int:
    """The pid in the lock file of the app of ``RefreshingProcess``."""
    name = lock_name("fleet", "/health", str(directory))
    try:
        return int((directory / "run" / f"{name}.lock").read_text())
    except (OSError, ValueError):  # not made yet, or being written
        return 0


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Callable[[], RefreshingProcess]]:
    """Start processes refreshing one app in ``tmp_path``; all left at the end."""
    (tmp_path / "switch").write_text("up")
    started: list[RefreshingProcess] = []

    def start() -> RefreshingProcess:
        started.append(RefreshingProcess(str(tmp_path), INTERVAL))
        return started[-1]

    yield start
    for process in started:
        try:
            os.kill(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        process.leave()


def test_the_note_is_written_once_the_signals_are_delivered(
    tmp_path: Path, fleet: Callable[[], RefreshingProcess]
) -> None:
    """The holder is killed while it delivers ``health_changed``: its
    successor sends it (old main wrote the note first, and the successor,
    reading "fail", sent nothing)."""
    first = fleet()
    wait_for(lambda: holder_pid(tmp_path) == first.pid, 5)
    second = fleet()
    (tmp_path / "slow").touch()
    (tmp_path / "switch").write_text("down")
    wait_for(lambda: (first.pid, ["delivering", "fail"]) in read_signals(tmp_path), 5)
    os.kill(first.pid, signal.SIGKILL)
    (tmp_path / "slow").unlink()
    wait_for(
        lambda: (second.pid, ["health_changed", "fail"]) in read_signals(tmp_path),
        5,
    )


def test_the_note_waits_for_a_slow_subscriber(run_dir: str) -> None:
    app = Flask(__name__)
    app.config.update(HEALTHCHECK_INTERVAL=INTERVAL, HEALTHCHECK_RUN_DIR=run_dir)
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    delivering, go_on = threading.Event(), threading.Event()

    def slow(sender: Flask, **kwargs: Any) -> None:
        delivering.set()
        go_on.wait(10)

    signals.health_changed.connect(slow, app)
    state = get_state(app)
    assert state.host_lock is not None
    note_path = Path(state.host_lock.note_path)
    try:
        health.start(app)
        assert delivering.wait(5)
        time.sleep(2 * INTERVAL)
        assert not note_path.exists(), "the note came before the page"
        go_on.set()
        wait_for(note_path.exists, 5)
        assert json.loads(note_path.read_text())["note"]["status"] == "fail"
    finally:
        go_on.set()
        state.refresher.stop(timeout=5)


# -- a frozen holder -----------------------------------------------------------


@pytest.mark.slow
def test_a_frozen_holder_is_taken_over_and_steps_down(
    tmp_path: Path, fleet: Callable[[], RefreshingProcess]
) -> None:
    """SIGSTOP for 5 s (about 16 intervals): another process alerts within
    three intervals plus the timeout (1.4 s; old main: none in 5 s); once
    the frozen one wakes, one process alerts again."""
    first = fleet()
    wait_for(lambda: holder_pid(tmp_path) == first.pid, 5)
    second = fleet()
    (tmp_path / "switch").write_text("down")
    wait_for(
        lambda: (first.pid, ["check_failed", "database"]) in read_signals(tmp_path), 5
    )
    frozen_at = len(read_signals(tmp_path))
    last_alert = alert_times(tmp_path, first.pid)[-1]
    os.kill(first.pid, signal.SIGSTOP)
    stopped_at = time.time()
    try:
        time.sleep(5)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    during = [
        s for s in read_signals(tmp_path)[frozen_at:] if s[1][0] == "check_failed"
    ]
    first_other = min(alert_times(tmp_path, second.pid), default=float("nan"))
    print(
        f"\nSIGSTOP 5 s: {len(during)} check_failed from the other process; the"
        f" first {first_other - stopped_at:.2f} s after SIGSTOP,"
        f" {first_other - last_alert:.2f} s after the holder's last alert"
    )
    assert {pid for pid, _ in during} == {second.pid}
    assert len(during) >= 5, during
    # Woken: it notices its file was replaced, within an interval.
    time.sleep(3 * INTERVAL)
    since = len(read_signals(tmp_path))
    time.sleep(8 * INTERVAL)
    after = [s for s in read_signals(tmp_path)[since:] if s[1][0] == "check_failed"]
    assert len({pid for pid, _ in after}) == 1, after
    assert 4 <= len(after) <= 10, after


GUNICORN_APP = (
    app_module(INTERVAL=INTERVAL, TIMEOUT=0.5, RUN_DIR='str(here / "run")')
    + ALERTING
    + """

health.start(app)
"""
)


@pytest.mark.slow
def test_gunicorn_workers_killed_mid_delivery_and_frozen(
    gunicorn_server: StartGunicorn,
) -> None:
    """Three gunicorn workers. The refreshing one is killed while it sends
    ``health_changed``: another sends it. The next one is frozen for 5 s:
    another alerts meanwhile, and one alerts once it wakes."""
    server = gunicorn_server(
        GUNICORN_APP, workers=3, files={"switch": "up", "slow": ""}
    )
    here = server.directory

    def holder() -> int:
        try:
            (path,) = (here / "run").glob("*.lock")
            return int(path.read_text())
        except (OSError, ValueError):
            return 0

    wait_for(lambda: holder() != 0, 5)
    (here / "switch").write_text("down")
    wait_for(lambda: any(w[0] == "delivering" for _, w in read_signals(here)), 5)
    (killed,) = {pid for pid, w in read_signals(here) if w[0] == "delivering"}
    os.kill(killed, signal.SIGKILL)
    (here / "slow").unlink()
    wait_for(
        lambda: any(
            pid != killed and w == ["health_changed", "fail"]
            for pid, w in read_signals(here)
        ),
        5,
    )
    wait_for(lambda: holder() not in (0, killed), 5)
    frozen = holder()
    seen = len(read_signals(here))
    os.kill(frozen, signal.SIGSTOP)
    try:
        time.sleep(5)
    finally:
        os.kill(frozen, signal.SIGCONT)
    during = [pid for pid, w in read_signals(here)[seen:] if w[0] == "check_failed"]
    time.sleep(3 * INTERVAL)
    since = len(read_signals(here))
    time.sleep(8 * INTERVAL)
    after = [pid for pid, w in read_signals(here)[since:] if w[0] == "check_failed"]
    print(
        f"\ngunicorn: {len(during)} check_failed while the holder was frozen 5 s,"
        f" from {len(set(during) - {frozen})} other worker(s); {len(after)} in"
        f" {8 * INTERVAL:.1f} s after it woke, from {len(set(after))}"
    )
    assert len(during) >= 5 and frozen not in during, during
    assert len(set(after)) == 1 and len(after) >= 4, after


# -- processes that don't refresh ------------------------------------------------


@pytest.mark.slow
def test_runs_outside_the_refresher_leave_the_alerts_to_it(
    tmp_path: Path, fleet: Callable[[], RefreshingProcess]
) -> None:
    """``health.run()`` and ``flask health`` next to a live refresher send
    only ``health_checked``; next to a frozen one, every signal."""
    refresher = fleet()
    wait_for(lambda: holder_pid(tmp_path) == refresher.pid, 5)
    (tmp_path / "switch").write_text("down")
    app = Flask("fleet", root_path=str(tmp_path))  # the refresher's app
    app.config.update(
        HEALTHCHECK_INTERVAL=INTERVAL,
        HEALTHCHECK_TIMEOUT=0.5,
        HEALTHCHECK_RUN_DIR=str(tmp_path / "run"),
    )
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    recorder = Recorder(app)
    with app.app_context():
        health.run()
    result = app.test_cli_runner().invoke(args=["health"])
    assert result.exit_code == 1, result.output
    assert recorder.names() == ["health-checked", "health-checked"]
    os.kill(refresher.pid, signal.SIGSTOP)
    try:
        time.sleep(3 * INTERVAL + 0.5 + 1.1)  # stale, and the look expired
        with app.app_context():
            health.run()
    finally:
        os.kill(refresher.pid, signal.SIGCONT)
    assert "check-failed" in recorder.names()


# -- a thread that can't start -------------------------------------------------


def test_a_refresher_that_cannot_start_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config.update(HEALTHCHECK_INTERVAL=INTERVAL, HEALTHCHECK_RUN_DIR=None)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    start = threading.Thread.start
    failures: list[threading.Thread] = []

    def start_once(thread: threading.Thread) -> None:
        if thread.name.startswith("healthcheck-refresh") and not failures:
            failures.append(thread)
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_once)
    state = get_state(app)
    client = app.test_client()
    try:
        assert client.get("/health").status_code == 200
        assert failures and not state.refresher.running
        time.sleep(INTERVAL)
        assert client.get("/health").status_code == 200
        assert state.refresher.running
    finally:
        state.refresher.stop(timeout=5)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Could not start the background" in m for m in messages) == 1


# -- a wall-clock step ---------------------------------------------------------


def test_a_wall_clock_step_freezes_no_gauge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is set back an hour (fault injection of ``time.time``):
    the gauges and ``last_run`` still follow every run."""
    app = Flask(__name__)
    health = HealthCheck(app)
    up = [True]
    health.add_check(lambda: up[0], name="database")
    registry = CollectorRegistry()
    init_prometheus(app, registry)

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name, {"check": "database"})

    with app.app_context():
        health.run()
    assert sample("health_check_status") == 1.0
    before = sample("health_check_last_run_timestamp_seconds")
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() - 3600)
    up[0] = False
    with app.app_context():
        assert health.run().status == "fail"
    assert sample("health_check_status") == 0.0
    after = sample("health_check_last_run_timestamp_seconds")
    assert before is not None and after is not None and after < before - 3000


def test_a_wall_clock_step_neither_keeps_nor_drops_history() -> None:
    wall, ticks = [1_700_000_000.0], [100.0]
    history = History(clock=lambda: wall[0], monotonic=lambda: ticks[0], max_age=60)

    history.record(CheckResult(name="db", status="pass"))
    wall[0] += 7200  # the clock jumps two hours ahead
    ticks[0] += 1
    history.record(CheckResult(name="db", status="fail"))
    trend = history.snapshot(["db"]).checks["db"]
    assert [e.status for e in trend.entries] == ["pass", "fail"]
    ticks[0] += 61  # a minute later, really
    wall[0] -= 3600
    assert history.snapshot(["db"]).checks["db"].entries == ()


def test_a_wall_clock_step_freezes_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's age is monotonic: after a step back of an hour a result
    is still reused for HEALTHCHECK_CACHE_TTL, and no longer."""
    app = Flask(__name__)
    health = configured_health(app, HEALTHCHECK_CACHE_TTL=0.2)
    runs: list[int] = []
    health.add_check(Counted(runs, True), name="database")
    client = app.test_client()
    assert client.get("/health").status_code == 200
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() - 3600)
    assert client.get("/health").status_code == 200
    assert len(runs) == 1, "reused within the TTL"
    time.sleep(0.3)
    assert client.get("/health").status_code == 200
    assert len(runs) == 2, "run again once the TTL passed"


#: Tries to take ``argv[1]`` with a HostLock (stale after ``argv[2]`` s)
#: every 20 ms for ``argv[3]`` s; exits 1 if it ever took it.
_CONTENDER = """
import sys, time
from flask_healthcheck.hostlock import HostLock
directory, name = sys.argv[1].rsplit("/", 1)
lock = HostLock(directory, name[: -len(".lock")], stale_after=float(sys.argv[2]))
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    if lock.acquire():
        sys.exit(1)
    time.sleep(0.02)
"""


def test_a_holder_busy_in_a_long_run_keeps_beating(tmp_path: Path) -> None:
    # The refresher beats only between runs; a run as long as its slowest
    # check must not look like a frozen holder.
    lock = HostLock(str(tmp_path / "run"), "busy", stale_after=0.3)
    assert lock.acquire()
    try:
        contender = subprocess.run(
            [sys.executable, "-c", _CONTENDER, lock.path, "0.3", "1.5"],
            timeout=30,
        )
        assert contender.returncode == 0, "took the lock from a live holder"
        assert lock.acquire()  # still the one at the path
    finally:
        lock.release()


# -- a hostile run dir: planted links, forged notes, other users ---------------


FAST_INTERVAL = 0.05


#: A uid that is not ours (``nobody``), for the tests that run as root.
OTHER_UID = 65534


needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="simulating another local user needs chown (root)",
)


class Seen:
    """Every alert signal of one app as ``(signal, check or statuses)``."""

    def __init__(self, app: Flask) -> None:
        self.items: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        signals.check_failed.connect(self._result("failed"), app, weak=False)
        signals.check_recovered.connect(self._result("recovered"), app, weak=False)
        signals.health_changed.connect(self._changed, app, weak=False)

    def _result(self, name: str) -> Any:
        def receive(sender: Flask, result: CheckResult, **kwargs: Any) -> None:
            with self._lock:
                self.items.append((name, result.name))

        return receive

    def _changed(
        self, sender: Flask, report: HealthReport, previous: str | None, **kw: Any
    ) -> None:
        with self._lock:
            self.items.append(("changed", f"{previous}->{report.status}"))

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.items]


def fleet_app(run_dir: str, root_path: str | None = None) -> Flask:
    """An app as a server runs it (not ``TESTING``, which turns the election off)."""
    app = Flask("app", root_path=root_path)
    app.config.update(HEALTHCHECK_INTERVAL=FAST_INTERVAL, HEALTHCHECK_RUN_DIR=run_dir)
    return app


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps made by a test; their refreshers are stopped at teardown."""
    made: list[Flask] = []
    yield made
    for app in made:
        state = app.extensions.get("healthcheck")
        if state is not None:
            state.refresher.stop(timeout=2)


def plant_note(state: Any, note: dict[str, Any]) -> None:
    """What another local user writes where the app reads its hand-over note:
    a note that looks like a sibling worker's."""
    assert state.host_lock is not None
    with open(state.host_lock.note_path, "w", encoding="utf-8") as f:
        json.dump({"pid": 1, "ppid": os.getppid(), "note": note}, f)


def run_dir_app(
    tmp_path: Path, apps: list[Flask], mode: int, owner: int | None = None
) -> tuple[Flask, HealthCheck]:
    """An app of :func:`fleet_app` whose run dir ``tmp_path / "run"`` has
    ``mode`` (and ``owner``)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chmod(run_dir, mode)
    if owner is not None:
        os.chown(run_dir, owner, owner)
    app = fleet_app(str(run_dir))
    apps.append(app)
    return app, HealthCheck(app)


def alerts_after_a_planted_note(
    app: Flask, health: HealthCheck, ok: bool, note: dict[str, Any], runs: int
) -> list[tuple[str, str]]:
    """What ``app`` alerts once its ``database`` check (passing if ``ok``)
    has run ``runs`` times after ``note`` was planted where it reads one."""
    ran: list[int] = []
    health.add_check(Counted(ran, ok), name="database")
    state = get_state(app)
    plant_note(state, note)
    seen = Seen(app)
    health.start(app)
    wait_for(lambda: len(ran) >= runs, 2)
    assert state.wait_for_signals(2)
    return seen.items


def assert_a_planted_failure_alerts_nothing(app: Flask, health: HealthCheck) -> None:
    """A note saying ``database`` failed, planted where ``app`` reads one,
    makes its passing check send no alert in three runs."""
    note = {"status": "fail", "checks": {"database": "fail"}}
    alerts = alerts_after_a_planted_note(app, health, True, note, 3)
    assert alerts == [], f"a healthy app alerted: {alerts}"


def test_a_symlink_planted_at_the_lock_file_is_never_followed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    target = tmp_path / "precious"
    target.write_text("precious\n")
    lock = HostLock(str(run_dir), "app")
    os.symlink(target, lock.path)
    assert lock.acquire()  # no election: every process refreshes
    assert not lock.held
    assert target.read_text() == "precious\n"


def test_a_read_only_run_dir_means_no_election_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = HostLock("/proc/flask-healthcheck-run", "app")
    with caplog.at_level(logging.ERROR, "flask_healthcheck"):
        assert bounded(lock.acquire, 2, "acquire on a read-only path")
        assert lock.acquire()
    assert not lock.held
    # Logged once, not every interval (other tests' threads may log too).
    mine = [r for r in caplog.records if lock.path in r.getMessage()]
    assert len(mine) == 1


def test_stop_releases_the_lock_at_once(tmp_path: Path, apps: list[Flask]) -> None:
    app = fleet_app(str(tmp_path / "run"))
    apps.append(app)
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    state = get_state(app)
    health.start(app)
    wait_for(lambda: state.refresher.elected, 2)
    assert state.host_lock is not None
    assert taken_elsewhere(state.host_lock.path)
    bounded(lambda: health.stop(app), 2, "health.stop()")
    assert not taken_elsewhere(state.host_lock.path)


def test_while_another_process_holds_the_lock_probes_still_answer_fresh(
    tmp_path: Path, apps: list[Flask]
) -> None:
    """The holder may be frozen (SIGSTOP, a debugger): this process's probes
    must run the checks themselves, not serve nothing or something stale."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    app = fleet_app(str(run_dir))
    apps.append(app)
    health = HealthCheck(app)
    ok = [True]
    health.add_check(lambda: ok[0], name="database")
    state = get_state(app)
    assert state.host_lock is not None
    other = OtherProcess(state.host_lock.path)
    try:
        client = FlaskClient(app)
        assert bounded(lambda: client.get("/health").status_code, 2, "probe") == 200
        wait_for(lambda: state.refresher.running, 2)
        ok[0] = False
        time.sleep(3 * FAST_INTERVAL)  # the latest result is older than two intervals
        assert bounded(lambda: client.get("/health").status_code, 2, "probe") == 500
        assert not state.refresher.elected
    finally:
        other.leave()


def test_a_malformed_or_huge_note_is_ignored(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    lock = HostLock(str(run_dir), "app")
    for text in ["{", "[]", '{"note": 3}', "\x00" * 1000, '{"note": {}' + " " * 10**6]:
        Path(lock.note_path).write_text(text)
        assert bounded(lock.read_note, 2, "read_note") is None


def test_the_lock_file_says_who_refreshes_and_nothing_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    lock = HostLock(str(run_dir), "app")
    assert lock.acquire()
    try:
        assert Path(lock.path).read_text() == f"{os.getpid()}\n"
        assert stat.S_IMODE(os.stat(lock.path).st_mode) == 0o600
    finally:
        lock.release()


def test_a_note_forged_in_an_unsafe_run_dir_sends_no_bogus_recovery(
    tmp_path: Path, apps: list[Flask]
) -> None:
    # Anyone may write in the run dir: the election is off.
    app, health = run_dir_app(tmp_path, apps, 0o777)
    assert_a_planted_failure_alerts_nothing(app, health)


def test_a_note_forged_in_an_unsafe_run_dir_cannot_hide_an_outage(
    tmp_path: Path, apps: list[Flask]
) -> None:
    app, health = run_dir_app(tmp_path, apps, 0o777)
    note = {"status": "fail", "checks": {}}
    alerts = alerts_after_a_planted_note(app, health, False, note, 2)
    assert ("changed", "None->fail") in alerts, alerts


def test_a_fifo_at_the_note_path_never_hangs_the_refresher(
    tmp_path: Path, apps: list[Flask]
) -> None:
    app, health = run_dir_app(tmp_path, apps, 0o777)
    runs: list[int] = []
    health.add_check(Counted(runs, True), name="database")
    state = get_state(app)
    assert state.host_lock is not None
    note_path = state.host_lock.note_path
    os.mkfifo(note_path)
    try:
        health.start(app)
        wait_for(lambda: len(runs) >= 2, 1.5, "the refresher ran no check")
    finally:
        # Let a refresher stuck in open() go: a writer opens the FIFO.
        fd = os.open(note_path, os.O_RDWR | os.O_NONBLOCK)
        os.close(fd)


@needs_root
def test_a_run_dir_symlinked_by_another_user_cannot_clobber_a_file(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "tmp"  # a /tmp of the host: sticky, world-writable
    shared.mkdir()
    os.chmod(shared, 0o1777)
    mine = shared / "mine"
    mine.mkdir(mode=0o700)
    precious = mine / "precious"
    precious.write_text("precious\n")
    theirs = shared / "theirs"
    theirs.mkdir()
    os.chmod(theirs, 0o777)
    os.chown(theirs, OTHER_UID, OTHER_UID)
    # The default run dir's name, planted by the other user before the app ran.
    link = shared / f"flask-healthcheck-{os.getuid()}"
    os.symlink(mine, link)
    os.lchown(link, OTHER_UID, OTHER_UID)

    lock = HostLock(str(link), "app")
    try:
        lock.acquire()
        # The other user repoints their link and plants one for the note.
        link.unlink()
        os.symlink(theirs, link)
        os.lchown(link, OTHER_UID, OTHER_UID)
        os.symlink(precious, theirs / f"app.json.{os.getpid()}.tmp")
        if lock.held:
            lock.write_note({"status": "pass", "checks": {}})
        assert precious.read_text() == "precious\n"
    finally:
        lock.release()


@needs_root
def test_a_run_dir_owned_by_another_user_feeds_no_note(
    tmp_path: Path, apps: list[Flask]
) -> None:
    app, health = run_dir_app(tmp_path, apps, 0o755, OTHER_UID)
    assert_a_planted_failure_alerts_nothing(app, health)


def test_two_services_both_named_app_never_silence_each_other(
    tmp_path: Path, apps: list[Flask]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    (tmp_path / "orders").mkdir()
    (tmp_path / "billing").mkdir()
    orders = fleet_app(str(run_dir), str(tmp_path / "orders"))
    billing = fleet_app(str(run_dir), str(tmp_path / "billing"))
    apps.extend([orders, billing])
    HealthCheck(orders)
    health = HealthCheck(billing)
    runs: list[int] = []
    health.add_check(Counted(runs, False), name="ledger")
    orders_lock = get_state(orders).host_lock
    assert orders_lock is not None
    other = OtherProcess(orders_lock.path)  # the orders service's refresher
    try:
        seen = Seen(billing)
        health.start(billing)
        wait_for(lambda: get_state(billing).refresher.running, 2)
        wait_for(lambda: "failed" in seen.names(), 1.0, "billing never alerted")
    finally:
        other.leave()
