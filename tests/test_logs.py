"""The flask_healthcheck logger only lets redacted text through."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import flask_healthcheck
from flask_healthcheck import CheckResult, HealthCheck, RedactingFilter
from flask_healthcheck.checks import Status
from flask_healthcheck.logs import LogLines, log_transition, logger

from .helpers import wait_for

SECRET = "postgresql://app:hunter22@db/app"


def _record(msg: str, *args: Any, **kwargs: Any) -> logging.LogRecord:
    return logging.getLogger("other").makeRecord(
        "other", logging.ERROR, __file__, 1, msg, args, None, **kwargs
    )


def test_the_filter_is_on_the_package_logger_once() -> None:
    import importlib

    import flask_healthcheck.logs

    importlib.reload(flask_healthcheck.logs)
    filters = [f for f in logger.filters if type(f).__name__ == "RedactingFilter"]
    assert len(filters) == 1


def test_message_arguments_traceback_and_stack(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        raise ConnectionError(f"could not connect to {SECRET}")
    except ConnectionError:
        with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
            logger.warning("failed: %s", SECRET, exc_info=True, stack_info=True)
    (record,) = caplog.records
    assert record.args is None and record.exc_info is None
    assert record.getMessage() == "failed: postgresql://app:***@db/app"
    assert record.exc_text is not None and "Traceback" in record.exc_text
    assert "ConnectionError: could not connect to postgresql://app:***@db/app" in (
        record.exc_text
    )
    assert record.stack_info is not None
    assert "hunter22" not in caplog.text


def test_the_same_filter_on_another_handler() -> None:
    record = _record("oops %s \x1b[2J", SECRET)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "oops postgresql://app:***@db/app \\x1b[2J"
    # A second filter on the way does nothing more.
    assert RedactingFilter().filter(record)


def test_arguments_that_do_not_fit_are_redacted_too() -> None:
    record = _record("two %s %s", SECRET)
    RedactingFilter().filter(record)
    assert "hunter22" not in record.getMessage()


def test_a_long_message_is_cut_before_it_is_redacted() -> None:
    record = _record("x" * 100_000 + " " + SECRET)
    RedactingFilter().filter(record)
    assert len(record.getMessage()) < 10_000


@pytest.mark.parametrize(
    ("previous", "status", "level"),
    [
        (None, "fail", logging.WARNING),
        ("pass", "fail", logging.WARNING),
        ("warn", "fail", logging.WARNING),
        ("fail", "fail", logging.DEBUG),
        # A recovery at the level of the failure it ends (issue 17).
        ("fail", "pass", logging.WARNING),
        ("fail", "warn", logging.WARNING),
        ("pass", "warn", logging.INFO),
        ("warn", "pass", logging.INFO),
        ("warn", "warn", None),
        (None, "pass", None),
        ("pass", "pass", None),
    ],
)
def test_log_transition(
    caplog: pytest.LogCaptureFixture,
    previous: Status | None,
    status: Status,
    level: int | None,
) -> None:
    result = CheckResult(name="db", status=status, error=f"refused by {SECRET}")
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        log_transition("shop", result, previous)
    # This app's (other tests' threads may log meanwhile).
    mine = [r for r in caplog.records if "of app 'shop'" in r.getMessage()]
    assert [r.levelno for r in mine] == ([] if level is None else [level])
    assert "hunter22" not in caplog.text
    if level is not None:
        assert "'db' of app 'shop'" in caplog.text


def test_log_transition_with_the_exception(caplog: pytest.LogCaptureFixture) -> None:
    error = ValueError(f"bad {SECRET}")
    result = CheckResult(name="db", status="fail", error="ValueError: bad")
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        log_transition("shop", result, "pass", error)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "started failing" in record.message
    assert (
        record.exc_text is not None and "ValueError: bad postgresql" in record.exc_text
    )
    assert "hunter22" not in caplog.text


def _failing(reason: str) -> CheckResult:
    return CheckResult(name="db", status="fail", error=reason)


@pytest.mark.parametrize("previous_as", ["result", "status"])
def test_a_recovery_is_logged_like_the_failure_it_ends(
    caplog: pytest.LogCaptureFixture, previous_as: str
) -> None:
    """Issue 17: the failure was a WARNING, its recovery INFO, so operators
    with default logging saw failures and never their end."""
    failed = _failing("ConnectionError: refused")
    previous = failed if previous_as == "result" else failed.status
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        log_transition("shop", failed, None)
        log_transition("shop", CheckResult(name="db", status="pass"), previous)
    mine = [r for r in caplog.records if "of app 'shop'" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in mine] == [
        (
            "WARNING",
            "Health check 'db' of app 'shop' started failing: ConnectionError: refused",
        ),
        ("WARNING", "Health check 'db' of app 'shop' recovered (pass)."),
    ]


def test_a_changed_failure_reason_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 17: a check that went from "connection refused" to "password
    authentication failed" logged the change at DEBUG only."""
    refused = _failing(f"ConnectionError: refused by {SECRET}")
    denied = _failing(f"OperationalError: password authentication failed {SECRET}")
    error = ValueError(f"denied {SECRET}")
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        log_transition("shop", denied, refused, error)
    (record,) = [r for r in caplog.records if "of app 'shop'" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "Health check 'db' of app 'shop' is failing for another reason:"
        " OperationalError: password authentication failed"
        " postgresql://app:***@db/app (was: ConnectionError: refused by"
        " postgresql://app:***@db/app)"
    )
    assert record.exc_text is not None and "ValueError: denied" in record.exc_text
    assert "hunter22" not in caplog.text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("ConnectionError: refused", "ConnectionError: refused"),
        (
            "still running after 3.1 s (timed out after 2 s); not started again",
            "still running after 12.7 s (timed out after 2 s); not started again",
        ),
    ],
)
def test_the_same_reason_is_debug_only(
    caplog: pytest.LogCaptureFixture, before: str, after: str
) -> None:
    """Numbers (durations) in a reason don't make it another one: a hung
    check must not log a WARNING per run."""
    with caplog.at_level(logging.DEBUG, logger="flask_healthcheck"):
        log_transition("shop", _failing(after), _failing(before))
    mine = [r for r in caplog.records if "of app 'shop'" in r.getMessage()]
    assert [(r.levelno, "still failing" in r.getMessage()) for r in mine] == [
        (logging.DEBUG, True)
    ]


#: A suite as a user writes it: the refresh in the base config, an app per
#: test, a failing check in the last test (whose late log line came last).
SUITE = """
import logging

import pytest
from flask import Flask

from flask_healthcheck import HealthCheck


def create_app():
    app = Flask("suite")
    app.config.update(
        TESTING=True, HEALTHCHECK_INTERVAL=15, DATABASE_URL="{secret}"
    )
    health = HealthCheck(app)

    @health.check
    def database(config):
        if config.get("DATABASE_DOWN"):
            raise ConnectionError("could not connect to " + config["DATABASE_URL"])

    return app


def test_up():
    assert create_app().test_client().get("/health").status_code == 200


def test_database_down(caplog):
    caplog.set_level(logging.WARNING, logger="flask_healthcheck")
    app = create_app()
    app.config["DATABASE_DOWN"] = True
    assert app.test_client().get("/health").status_code == 500
    # Right away: the probe has answered, its log is written.
    (record,) = [r for r in caplog.records if "started failing" in r.message]
    assert record.levelname == "WARNING"
    assert "ConnectionError: could not connect to" in record.exc_text
    print("the test's log:", record.message)
"""


def test_a_failing_checks_log_lands_inside_the_test_that_caused_it(
    tmp_path: Path,
) -> None:
    """Issue 17: a failing check's WARNING and traceback were written by
    the delivery thread after the probe answered, and printed after
    pytest's summary, outside capture."""
    (tmp_path / "test_suite.py").write_text(SUITE.replace("{secret}", SECRET))
    root = Path(flask_healthcheck.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-s"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    output = done.stdout
    assert done.returncode == 0, output
    assert "the test's log: Health check 'database' of app 'suite' started" in output
    # Nothing after the summary (a late log line came after it).
    last = output.rstrip().splitlines()[-1]
    assert last.startswith("=") and "2 passed" in last, output
    assert "hunter22" not in output


def test_a_line_recorded_after_its_run_is_written_too(
    app: Flask, health: HealthCheck, caplog: pytest.LogCaptureFixture
) -> None:
    """A check that finishes after its timeout, once its run has answered:
    no run's thread writes that line, the delivery thread does."""
    health.add_check(lambda: time.sleep(0.3), name="slow", timeout=0.05)
    with caplog.at_level(logging.INFO, logger="flask_healthcheck"):
        assert app.test_client().get("/health").status_code == 500
        wait_for(
            lambda: "'slow' finished" in caplog.text, 5, "the late line is missing"
        )
    messages = [r.getMessage() for r in caplog.records if "'slow'" in r.getMessage()]
    assert messages[0].startswith("Health check 'slow' of app")
    assert "started failing: timed out after 0.05 s" in messages[0]
    assert messages[-1].startswith("Health check 'slow' finished")


def test_lines_are_written_in_the_order_they_were_recorded() -> None:
    written: list[int] = []
    lines = LogLines()
    lines.begin()
    assert not lines.put([partial(written.append, n) for n in range(3)])
    writers = [threading.Thread(target=lines.write) for _ in range(4)]
    for writer in writers:
        writer.start()
    lines.put([partial(written.append, n) for n in range(3, 6)])
    lines.end()
    for writer in writers:
        writer.join(5)
    assert written == list(range(6))
    assert lines.put([partial(written.append, 6)])  # no run to write it


def test_a_log_filter_that_raises_never_breaks_a_probe(
    app: Flask, health: HealthCheck
) -> None:
    def broken(record: logging.LogRecord) -> bool:
        raise RuntimeError("filter bug")

    health.add_check(lambda: False, name="database")
    logger.addFilter(broken)
    try:
        assert app.test_client().get("/health").status_code == 500
    finally:
        logger.removeFilter(broken)
