"""Hostile tests of the host election: the run directory, the lock file, the
note handed to the next refresher, and who refreshes and alerts.

Another user of the host is simulated with ``chown`` where that needs root;
those tests are skipped otherwise. Every wait is bounded.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import CheckResult, HealthCheck, HealthReport, signals
from flask_healthcheck.hostlock import HostLock
from flask_healthcheck.state import get_state

from .helpers import bounded, wait_for
from .hostlocks import OtherProcess, taken_elsewhere

INTERVAL = 0.05
#: A uid that is not ours (``nobody``), for the tests that run as root.
OTHER_UID = 65534

needs_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="simulating another local user needs chown (root)",
)


class Counted:
    """A check returning ``value``, noting each run in ``runs``."""

    def __init__(self, runs: list[int], value: bool) -> None:
        self.runs = runs
        self.value = value

    def __call__(self) -> bool:
        self.runs.append(1)
        return self.value


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
    app.config.update(HEALTHCHECK_INTERVAL=INTERVAL, HEALTHCHECK_RUN_DIR=run_dir)
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


# -- what held -----------------------------------------------------------------


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
        time.sleep(3 * INTERVAL)  # the latest result is older than two intervals
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


# -- defects -------------------------------------------------------------------


def test_a_note_forged_in_an_unsafe_run_dir_sends_no_bogus_recovery(
    tmp_path: Path, apps: list[Flask]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chmod(run_dir, 0o777)  # anyone may write here: the election is off
    app = fleet_app(str(run_dir))
    apps.append(app)
    health = HealthCheck(app)
    runs: list[int] = []

    def database() -> bool:
        runs.append(1)
        return True

    health.add_check(database, name="database")
    state = get_state(app)
    plant_note(state, {"status": "fail", "checks": {"database": "fail"}})
    seen = Seen(app)
    health.start(app)
    wait_for(lambda: len(runs) >= 3, 2)
    assert state.signals.flush(2)
    assert seen.items == [], f"a healthy app alerted: {seen.items}"


def test_a_note_forged_in_an_unsafe_run_dir_cannot_hide_an_outage(
    tmp_path: Path, apps: list[Flask]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chmod(run_dir, 0o777)
    app = fleet_app(str(run_dir))
    apps.append(app)
    health = HealthCheck(app)
    runs: list[int] = []

    def database() -> bool:
        runs.append(1)
        return False

    health.add_check(database, name="database")
    state = get_state(app)
    plant_note(state, {"status": "fail", "checks": {}})
    seen = Seen(app)
    health.start(app)
    wait_for(lambda: len(runs) >= 2, 2)
    assert state.signals.flush(2)
    assert ("changed", "None->fail") in seen.items, seen.items


def test_a_fifo_at_the_note_path_never_hangs_the_refresher(
    tmp_path: Path, apps: list[Flask]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chmod(run_dir, 0o777)
    app = fleet_app(str(run_dir))
    apps.append(app)
    health = HealthCheck(app)
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
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    os.chown(run_dir, OTHER_UID, OTHER_UID)
    app = fleet_app(str(run_dir))
    apps.append(app)
    health = HealthCheck(app)
    runs: list[int] = []
    health.add_check(Counted(runs, True), name="database")
    state = get_state(app)
    plant_note(state, {"status": "fail", "checks": {"database": "fail"}})
    seen = Seen(app)
    health.start(app)
    wait_for(lambda: len(runs) >= 3, 2)
    assert state.signals.flush(2)
    assert seen.items == [], f"a healthy app alerted: {seen.items}"


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
