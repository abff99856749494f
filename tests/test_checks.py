"""What a check returns and how it counts."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, HealthCheck, HealthReport


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (True, "pass"),
        (None, "pass"),
        (False, "fail"),
        (1, "pass"),
        (0, "fail"),
        ("", "fail"),
        ([], "fail"),
        ("ok", "pass"),
    ],
)
def test_return_values_count_by_the_rules(
    app: Flask, health: HealthCheck, value: Any, status: str
) -> None:
    health.add_check(lambda: value, name="c")
    with app.app_context():
        assert health.run().checks[0].status == status


def test_raising_fails_with_a_safe_error(app: Flask, health: HealthCheck) -> None:
    @health.check
    def broken() -> None:
        raise ConnectionError("connection refused")

    with app.app_context():
        result = health.run().checks[0]
    assert (result.name, result.status) == ("broken", "fail")
    assert result.error == "ConnectionError: connection refused"


def test_bare_and_called_decorators(app: Flask, health: HealthCheck) -> None:
    @health.check
    def bare() -> bool:
        return True

    @health.check(name="called", timeout=2.0, critical=False, tags=("ready",))
    def other() -> bool:
        return True

    assert bare() is True and other() is True  # decorators return the function
    with app.app_context():
        report = health.run()
    assert [r.name for r in report.checks] == ["bare", "called"]
    assert report.checks[1].tags == frozenset({"ready"})
    assert report.checks[1].critical is False


def test_a_returned_check_result_is_taken_as_it_is(
    app: Flask, health: HealthCheck
) -> None:
    @health.check
    def disk() -> CheckResult:
        return CheckResult(
            status="warn", error="91% full", observed_value=91, observed_unit="%"
        )

    with app.app_context():
        report = health.run()
    result = report.checks[0]
    assert (result.name, result.status, result.error) == ("disk", "warn", "91% full")
    assert (result.observed_value, result.observed_unit) == (91, "%")
    assert result.duration > 0
    assert report.status == "warn" and report.healthy


def test_check_result_rejects_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="pass, warn, fail"):
        CheckResult(status="ok")  # type: ignore[arg-type]


def test_report_from_results() -> None:
    report = HealthReport.from_results([CheckResult(name="a"), CheckResult(name="b")])
    assert report.status == "pass" and report.started_at > 0
    assert HealthReport.from_results([]).status == "pass"


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [
        ((False, "db down"), "fail", "db down"),
        ((True, "ok"), "pass", None),
        ((False, ""), "fail", "check returned False"),
        ((False, None), "fail", "check returned False"),
        ((False, {"lag": 12}), "fail", "{'lag': 12}"),
        (("yes", "no"), "pass", None),
        ((), "fail", "check returned a false tuple"),
    ],
)
def test_a_bool_and_message_tuple_counts_by_the_bool(
    app: Flask, health: HealthCheck, value: Any, status: str, error: str | None
) -> None:
    """py-healthcheck's ``return False, "db down"``: the tuple itself is
    truthy, but the check fails, with the message as its error."""
    health.add_check(lambda: value, name="c")
    with app.app_context():
        result = health.run().checks[0]
    assert (result.status, result.error) == (status, error)


def test_a_failing_tuple_message_is_redacted(app: Flask, health: HealthCheck) -> None:
    health.add_check(lambda: (False, "no route to redis://:s3cret@cache"), name="c")
    with app.app_context():
        result = health.run().checks[0]
    assert result.error == "no route to redis://:***@cache"
