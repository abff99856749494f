"""Work done in a forked child, reported to the parent through a pipe.

The parent waits with a deadline and kills a child that hangs, so a
deadlocked child fails the test instead of hanging it. ``how`` is
``"os.fork"`` (Python's, which runs the at-fork handlers, as gunicorn forks)
or ``"libc fork"`` (libc's ``fork()`` called directly, as uWSGI forks in C).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import warnings
from collections.abc import Callable
from typing import Any

import pytest


def fork(how: str) -> int:
    if how == "os.fork":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            return os.fork()
    pid: int = ctypes.CDLL(None).fork()
    return pid


def in_child(how: str, work: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``work()`` in a child made by ``how``; its JSON result, or a test
    failure if the child hangs for ``timeout`` seconds or raises."""
    read_end, write_end = os.pipe()
    pid = fork(how)
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            os.write(write_end, json.dumps({"result": work()}).encode())
        except BaseException as e:  # noqa: B036 - reported through the pipe
            os.write(write_end, json.dumps({"raised": repr(e)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        chunks = []
        while True:
            ready, _, _ = select.select([read_end], [], [], timeout)
            if not ready:
                pytest.fail(f"the child ({how}) hung for {timeout:g} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        outcome = json.loads(b"".join(chunks) or b"{}")
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    assert "raised" not in outcome, f"the child ({how}) raised {outcome['raised']}"
    return outcome.get("result")
