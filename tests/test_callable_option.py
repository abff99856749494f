"""The ``callable=`` option as clearskies users port it: any callable,
its return value by clearskies' truth (``None`` fails), py-healthcheck's
``(bool, str)`` tuples, and mistakes found at registration."""

from __future__ import annotations

import functools
from typing import Any
from unittest import mock

import pytest
from flask import Flask

from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck
from flask_healthcheck.state import get_state

from .helpers import FAILURE, SUCCESS, bounded


def results(app: Flask) -> dict[str, CheckResult]:
    """The app's checks run once, by name."""
    with app.app_context():
        return {result.name: result for result in get_state(app).run(fresh=True).checks}


def ping(host: str, memory_backend: dict[str, Any]) -> bool:
    return host == "db" and memory_backend == {}


class Pinger:
    """A callable object: its ``__call__`` gets services injected."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, memory_backend: dict[str, Any]) -> bool:
        self.calls += 1
        return memory_backend == {}


@pytest.mark.parametrize(
    "make_callable",
    [
        lambda: functools.partial(ping, "db"),
        Pinger,
        lambda: mock.Mock(return_value=True),
    ],
    ids=["partial", "callable-object", "mock"],
)
def test_a_callable_without_a_name_is_the_check_named_callable(
    app: Flask, make_callable: Any
) -> None:
    """Issue 10.1: the endpoint answered 500 forever, never calling it."""
    func = make_callable()
    HealthCheck(app, callable=func)
    response = app.test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert [(r.name, r.status) for r in results(app).values()] == [("callable", "pass")]


def test_a_mock_is_called_on_every_probe(app: Flask) -> None:
    func = mock.Mock(return_value=False)
    HealthCheck(app, callable=func)
    client = app.test_client()
    assert client.get("/health").data == FAILURE
    func.return_value = True
    assert client.get("/health").data == SUCCESS
    assert func.call_count == 2


def test_a_callable_object_gets_services_injected(app: Flask) -> None:
    pinger = Pinger()
    HealthCheck(app, callable=pinger)
    assert app.test_client().get("/health").data == SUCCESS
    assert pinger.calls == 1


def test_a_named_callable_keeps_its_name(app: Flask) -> None:
    def database_up() -> bool:
        return True

    HealthCheck(app, callable=database_up)
    assert list(results(app)) == ["database_up"]


def only_positional(database: Any, /) -> bool:
    return True


@pytest.mark.parametrize("where", ["argument", "config", "init_app"])
def test_a_callable_that_cant_work_fails_at_registration(
    app: Flask, where: str
) -> None:
    """Not as a permanent 500 at the first request."""
    with pytest.raises(ConfigurationError, match="positional-only parameter"):
        if where == "argument":
            HealthCheck(callable=only_positional)
        elif where == "config":
            app.config["HEALTHCHECK_CALLABLE"] = only_positional
            HealthCheck(app)
        else:
            HealthCheck(callable=only_positional).init_app(app)


def test_a_duplicate_name_fails_at_registration(app: Flask) -> None:
    def memory_backend() -> bool:
        return True

    with pytest.raises(ConfigurationError, match="already registered"):
        HealthCheck(app, services=["memory_backend"], callable=memory_backend)


def test_add_check_without_a_name_to_be_had_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match=r"has no __name__.*name='\.\.\.'"):
        HealthCheck().add_check(functools.partial(ping, "db"))


def test_add_check_names_a_partial_when_asked(app: Flask, health: HealthCheck) -> None:
    health.add_check(functools.partial(ping, "db"), name="database")
    assert list(results(app)) == ["database"]


# -- what the callable returns -----------------------------------------------------


def test_a_callable_returning_none_fails_as_in_clearskies(app: Flask) -> None:
    """Issue 10.2: a ported ``if db.ping(): return True`` reported healthy
    with the database down."""

    def forgot_to_return() -> None:
        pass

    HealthCheck(app, callable=forgot_to_return)
    response = app.test_client().get("/health")
    assert (response.status_code, response.data) == (500, FAILURE)
    error = results(app)["forgot_to_return"].error
    assert error == "the callable returned None (return True when healthy)"


@pytest.mark.parametrize(
    ("value", "code"),
    [(True, 200), (False, 500), (1, 200), (0, 500), ("ok", 200), ("", 500), ([], 500)],
)
def test_a_callable_counts_by_its_truth(app: Flask, value: Any, code: int) -> None:
    HealthCheck(app, callable=lambda: value)
    assert app.test_client().get("/health").status_code == code


@pytest.mark.parametrize(
    ("value", "code", "error"),
    [
        ((False, "db down"), 500, "db down"),
        ((True, "ok"), 200, None),
    ],
)
def test_a_callable_returning_a_bool_and_message_is_read_as_such(
    app: Flask, value: Any, code: int, error: str | None
) -> None:
    """py-healthcheck's style: the tuple is not counted by its truth."""
    HealthCheck(app, callable=lambda: value)
    assert app.test_client().get("/health").status_code == code
    assert results(app)["callable"].error == error


def test_checks_still_pass_on_none(app: Flask, health: HealthCheck) -> None:
    """``@health.check`` keeps the Python norm: raise to fail."""

    @health.check
    def raises_to_fail() -> None:
        pass

    assert app.test_client().get("/health").data == SUCCESS


def test_the_callable_option_returning_none_fails(app: Flask) -> None:
    HealthCheck(app, callable=lambda: None)
    response = bounded(lambda: app.test_client().get("/health"), 2, "GET /health")
    assert (response.status_code, response.data) == (500, FAILURE)


def test_a_false_tuple_fails_with_its_message(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    health = HealthCheck(app)
    health.add_check(lambda: (False, "replica lag 40 s"), name="replica")
    response = bounded(lambda: app.test_client().get("/health"), 2, "GET /health")
    assert response.status_code == 500
    checks = response.json["data"]["checks"]  # type: ignore[index]
    assert "replica lag 40 s" in checks["replica"]["error"]
