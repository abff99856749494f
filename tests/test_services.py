"""The service-factory map and dependency injection by parameter name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from flask import Flask, g

from flask_healthcheck import HealthCheck, observe, time_left


def test_factories_get_parameters_injected(app: Flask, health: HealthCheck) -> None:
    app.config["DSN"] = "memory://"

    @health.service("settings")
    def settings(config: Any) -> str:
        return str(config["DSN"])

    @health.service("database")
    def database(settings: str, app: Flask) -> tuple[str, str]:
        return (settings, app.name)

    seen = []

    @health.check
    def migrations(database: tuple[str, str]) -> bool:
        seen.append(database)
        return True

    with app.app_context():
        assert health.run().status == "pass"
    assert seen == [("memory://", app.name)]


def test_bare_service_decorator_uses_the_function_name(
    app: Flask, health: HealthCheck
) -> None:
    @health.service
    def cache() -> str:
        return "cache"

    @health.check
    def uses_cache(cache: str) -> bool:
        return cache == "cache"

    with app.app_context():
        assert health.run().status == "pass"


def test_services_are_built_afresh_on_every_run(
    app: Flask, health: HealthCheck
) -> None:
    built = []

    @health.service("counter")
    def counter() -> int:
        built.append(1)
        return len(built)

    health.add_check(lambda counter: True, name="c")
    with app.app_context():
        health.run()
        health.run()
    assert len(built) == 2


def test_a_service_shared_by_factories_is_built_once_per_check(
    app: Flask, health: HealthCheck
) -> None:
    built = []

    def base() -> str:
        built.append(1)
        return "base"

    health.add_service("base", base)
    health.add_service("left", lambda base: base)
    health.add_service("right", lambda base: base)
    health.add_check(lambda left, right: left == right, name="both")
    with app.app_context():
        assert health.run().status == "pass"
    assert built == [1]


def test_generator_factories_are_torn_down_after_the_check(
    app: Flask, health: HealthCheck
) -> None:
    events = []

    @health.service("connection")
    def connection() -> Iterator[str]:
        events.append("open")
        yield "conn"
        events.append("close")

    @health.check
    def ok(connection: str) -> bool:
        events.append("check ok")
        return True

    @health.check
    def broken(connection: str) -> bool:
        events.append("check broken")
        raise RuntimeError("boom")

    with app.app_context():
        report = health.run()
    assert report.status == "fail"
    assert events.count("open") == events.count("close") == 2


def test_a_failing_teardown_fails_the_check(app: Flask, health: HealthCheck) -> None:
    @health.service("connection")
    def connection() -> Iterator[str]:
        yield "conn"
        raise OSError("close failed")

    health.add_check(lambda connection: True, name="c")
    with app.app_context():
        (result,) = health.run().checks
    assert (result.status, result.error) == ("fail", "OSError: close failed")


def test_async_factories_and_checks(app: Flask, health: HealthCheck) -> None:
    events = []

    @health.service("client")
    async def client() -> AsyncIterator[str]:
        events.append("open")
        yield "client"
        events.append("close")

    @health.service("value")
    async def value(client: str) -> str:
        return client + "!"

    @health.check
    async def async_check(value: str) -> bool:
        return value == "client!"

    @health.check
    def sync_check(value: str) -> bool:
        return value == "client!"

    with app.app_context():
        report = health.run()
    assert report.status == "pass", report
    assert events == ["open", "close"] * 2


def test_checks_run_in_an_app_context_with_teardown(
    app: Flask, health: HealthCheck
) -> None:
    torn_down = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))

    @health.check
    def uses_g() -> bool:
        g.value = 1
        return True

    with app.app_context():
        assert health.run().status == "pass"
        assert torn_down == [None]  # the check's own context, torn down already
        assert "value" not in g


def test_a_users_service_wins_over_a_ready_made_one(
    app: Flask, health: HealthCheck
) -> None:
    health.add_service("cursor_backend", lambda: "mine")
    health.add_check(lambda cursor_backend: cursor_backend == "mine", name="c")
    with app.app_context():
        assert health.run().status == "pass"


def test_optional_parameters_keep_their_default(
    app: Flask, health: HealthCheck
) -> None:
    health.add_check(lambda missing=True: missing, name="c")
    with app.app_context():
        assert health.run().status == "pass"


def test_two_apps_keep_separate_maps() -> None:
    health = HealthCheck()
    first, second = Flask("first"), Flask("second")
    health.init_app(first)
    health.init_app(second)
    health.add_service("database", lambda: "first", app=first)
    health.add_service("database", lambda: "second", app=second)
    seen = []
    health.add_check(lambda database, app: seen.append((app.name, database)), name="db")
    assert first.test_client().get("/health").status_code == 200
    assert second.test_client().get("/health").status_code == 200
    assert seen == [("first", "first"), ("second", "second")]


def test_one_extension_serves_apps_with_their_own_config() -> None:
    health = HealthCheck()
    first, second = Flask("first"), Flask("second")
    first.config["HEALTHCHECK_SERVICES"] = ["memory_backend"]
    second.config["HEALTHCHECK_SERVICES"] = ["cursor_backend"]
    health.init_app(first)
    health.init_app(second)
    assert first.test_client().get("/health").status_code == 200
    assert second.test_client().get("/health").status_code == 500


def test_registration_for_one_app_stays_there() -> None:
    health = HealthCheck()
    first, second = Flask("first"), Flask("second")
    health.init_app(first)
    health.init_app(second)
    health.add_check(lambda: False, name="only_first", app=first)
    assert first.test_client().get("/health").status_code == 500
    assert second.test_client().get("/health").status_code == 200


def test_each_check_gets_a_fresh_g_and_a_teardown(
    app: Flask, health: HealthCheck
) -> None:
    torn_down: list[BaseException | None] = []
    app.teardown_appcontext(torn_down.append)
    seen: list[object] = []
    for i in range(5):

        def check(i: int = i) -> None:
            seen.append(g.get("mark"))
            g.mark = i

        health.add_check(check, name=f"c{i}")
    with app.app_context():
        health.run()
        assert len(torn_down) == 5
    assert seen == [None] * 5


def test_a_service_check_reports_what_its_factory_observed(app: Flask) -> None:
    health = HealthCheck(app, services=["cache"])

    @health.service("cache")
    def cache() -> Iterator[str]:
        observe(1.5, "ms")
        yield "client"

    health.add_check(lambda cache: True, name="uses_cache")
    with app.app_context():
        first, second = health.run().checks
    assert (first.name, first.observed_value, first.observed_unit) == (
        "cache",
        1.5,
        "ms",
    )
    # Only the check named after the service reports it.
    assert second.observed_value is None


def test_observe_outside_a_health_run_is_ignored() -> None:
    observe(1, "ms")
    assert time_left() is None


def test_time_left_counts_down_to_the_checks_timeout(
    app: Flask, health: HealthCheck
) -> None:
    seen: list[float | None] = []

    @health.service("budget")
    async def budget() -> float | None:
        return time_left()

    @health.check(timeout=2.0)
    def timed(budget: float | None) -> None:
        seen.extend((budget, time_left()))

    with app.app_context():
        assert health.run().status == "pass"
    assert all(left is not None and 1.5 < left <= 2.0 for left in seen), seen
