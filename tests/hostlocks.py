"""Other processes of the host, to hold or try the lock files the
election uses, for the election tests."""

from __future__ import annotations

import subprocess
import sys

#: Holds ``argv[1]`` locked (waiting for it if need be) until stdin closes.
_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
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
