"""Nothing hung or broken in one check, endpoint or teardown holds up the rest.

Every probe here runs in a daemon thread and is waited for with a deadline
(:class:`~tests.helpers.Bounded`): a probe that never answers fails the test
and is released at teardown, it never hangs the run.
"""

from __future__ import annotations

import threading

import pytest
from flask import Flask, g
from werkzeug.test import TestResponse

from flask_healthcheck import HealthCheck

from .helpers import (
    FAILURE,
    Bounded,
    FirstCallDiffers,
    bounded,
    detailed_health,
    wait_for,
)

#: The checks' timeout in these tests, seconds.
TIMEOUT = 0.3
#: What a probe may take beyond its checks' timeout on a busy machine.
MARGIN = 1.0


def get(app: Flask, path: str) -> Bounded[TestResponse]:
    """``GET path`` through the test client, in a thread of its own."""
    return Bounded(lambda: app.test_client().get(path), f"GET {path}")


def status(app: Flask, path: str, timeout: float = TIMEOUT + MARGIN) -> int:
    return get(app, path).result(timeout, f"GET {path}").status_code


def test_a_hung_check_in_one_endpoint_never_starves_another(
    app: Flask, release: threading.Event
) -> None:
    """Issue 8, defect 1: after ``/readyz`` timed out on its hung database,
    ``/livez`` (a trivial check) never answered again."""
    app.config.update(
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
        HEALTHCHECK_TIMEOUT=TIMEOUT,
    )
    health = HealthCheck(app)
    health.add_check(lambda: True, name="alive", tags=["live"])
    health.add_check(lambda: release.wait(), name="database", tags=["ready"])
    app.add_url_rule("/", "index", lambda: "user traffic")
    deadline = TIMEOUT + MARGIN
    assert status(app, "/readyz") == 500
    for number in range(5):
        probes = [get(app, path) for path in ("/readyz", "/livez", "/livez", "/")]
        ready, *live, user = [
            probe.result(deadline, f"round {number + 1}: a probe") for probe in probes
        ]
        assert (ready.status_code, ready.data) == (500, FAILURE)
        assert [r.status_code for r in live] == [200, 200]
        assert user.text == "user traffic"


def test_a_teardown_that_hangs_once_stalls_no_later_probe(
    app: Flask, release: threading.Event
) -> None:
    """Issue 8, defect 2: a teardown that hung once (the check itself passes
    in no time) stalled every later probe, forever."""
    app.config["HEALTHCHECK_TIMEOUT"] = TIMEOUT
    health = HealthCheck(app)
    hung = threading.Event()

    @health.check
    def quick() -> bool:
        g.ran_a_check = True
        return True

    @app.teardown_appcontext
    def close_session(error: BaseException | None) -> None:
        # Only the contexts the checks ran in; once.
        if g.get("ran_a_check") and not hung.is_set():
            hung.set()
            release.wait()

    deadline = TIMEOUT + MARGIN
    status(app, "/health", deadline)
    assert hung.is_set()
    for number in range(5):
        answered = status(app, "/health", deadline)
        assert answered in (200, 500), f"probe {number + 2}"
    release.set()
    wait_for(lambda: status(app, "/health", deadline) == 200, 2 * deadline)


def test_a_teardown_that_raises_once_wedges_no_check(app: Flask) -> None:
    """Issue 8, defect 3: an app teardown function that raised once left a
    check "still running ... not started again" until the app restarted."""
    app.config["HEALTHCHECK_TIMEOUT"] = TIMEOUT
    health = HealthCheck(app)
    raised = threading.Event()
    for number in range(5):
        health.add_check(lambda: setattr(g, "ran_a_check", True), name=f"c{number}")

    @app.teardown_appcontext
    def close_session(error: BaseException | None) -> None:
        if g.get("ran_a_check") and not raised.is_set():
            raised.set()
            raise RuntimeError("the session could not be closed")

    status(app, "/health")
    assert raised.is_set()
    # The next probe runs every check again, and they pass.
    wait_for(lambda: status(app, "/health") == 200, 2 * (TIMEOUT + MARGIN))


class UnprintableError(Exception):
    """An exception whose message can't be had: ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def test_an_exception_that_cant_be_printed_wedges_no_check(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 8, defect 3: a check raising an exception whose ``__str__``
    raises was left "still running" for good."""
    health = detailed_health(app, TIMEOUT)

    def unprintable() -> None:
        raise UnprintableError

    flaky = FirstCallDiffers[None](unprintable, lambda: None)
    health.add_check(flaky, name="flaky")
    response = bounded(lambda: app.test_client().get("/health"), TIMEOUT + MARGIN)
    assert response.status_code == 500
    error = response.json["data"]["checks"]["flaky"]["error"]  # type: ignore[index]
    assert error.startswith("UnprintableError")
    assert status(app, "/health") == 200
    assert flaky.calls == 2
