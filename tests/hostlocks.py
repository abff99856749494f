"""Other processes of the host, to hold or try the lock files the
election uses, for the election tests."""

from __future__ import annotations

import subprocess
import sys

#: Holds ``argv[1]`` locked (waiting for it if need be) until stdin closes,
#: beating (touching its mtime) every 50 ms as a live holder does.
_HOLDER = """
import fcntl, os, sys, threading
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
done = threading.Event()

def beat():
    while not done.wait(0.05):
        os.utime(fd)

threading.Thread(target=beat, daemon=True).start()
print("held", flush=True)
sys.stdin.read()
done.set()
"""

#: Exits 0 if it could take ``argv[1]`` at once, 1 if another process holds it.
_TRY = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
"""


def taken_elsewhere(path: str) -> bool:
    """True if another process could not take the lock at ``path`` now."""
    result = subprocess.run([sys.executable, "-c", _TRY, path], timeout=10)
    return result.returncode == 1


class OtherProcess:
    """Another process of the host, holding a lock file until :meth:`leave`."""

    def __init__(self, path: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "held\n"

    def leave(self) -> None:
        self.process.communicate(timeout=10)


#: The checks and subscribers of an app that refreshes, after its ``here``
#: (a directory), ``app`` and ``health``: see :data:`_REFRESHER`.
ALERTING = """
def note(*words):
    line = " ".join([str(os.getpid()), f"{time.time():.3f}", *words])
    with open(here / "signals", "a") as f:
        f.write(line + "\\n")


@health.check
def database():
    return (here / "switch").read_text() == "up"


@signals.check_failed.connect_via(app)
def failed(sender, result):
    note("check_failed", result.name)


@signals.check_recovered.connect_via(app)
def recovered(sender, result):
    note("check_recovered", result.name)


@signals.health_changed.connect_via(app)
def changed(sender, report, previous):
    if (here / "slow").exists():
        note("delivering", report.status)
        time.sleep(60)
    note("health_changed", report.status)
"""

#: A process of the host refreshing an app (``HEALTHCHECK_INTERVAL`` =
#: ``argv[2]``) in directory ``argv[1]``, until stdin closes. Its check
#: passes while the file ``switch`` says ``up``; its subscribers note each
#: alert as ``<pid> <time> <signal> <what>`` in ``signals`` (append mode, so
#: the lines of several processes never mix). While the file ``slow``
#: exists, its ``health_changed`` subscriber notes ``delivering`` and hangs.
_REFRESHER = (
    """
import os, sys, time
from pathlib import Path
from flask import Flask
from flask_healthcheck import HealthCheck, signals

here, interval = Path(sys.argv[1]), float(sys.argv[2])
app = Flask("fleet", root_path=str(here))
app.config.update(
    HEALTHCHECK_INTERVAL=interval,
    HEALTHCHECK_TIMEOUT=0.5,
    HEALTHCHECK_RUN_DIR=str(here / "run"),
)
health = HealthCheck(app)
"""
    + ALERTING
    + """

health.start(app)
print("started", flush=True)
sys.stdin.read()
"""
)


class RefreshingProcess:
    """A process of the host running the app of :data:`_REFRESHER` in
    ``directory``, until :meth:`leave` (or :meth:`kill`)."""

    def __init__(self, directory: str, interval: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _REFRESHER, directory, str(interval)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "started\n"

    @property
    def pid(self) -> int:
        return self.process.pid

    def leave(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=10)
