"""The service-factory map and dependency injection by parameter name."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from flask import Flask, g

from flask_healthcheck import ConfigurationError, HealthCheck, observe, time_left
from flask_healthcheck.config import ServiceCheckOptions
from flask_healthcheck.services import service_check
from flask_healthcheck.state import get_state


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
    # Each check built and closed its own client; the two checks run
    # concurrently, so their events may interleave.
    assert sorted(events) == ["close", "close", "open", "open"]
    assert events[0] == "open" and events[-1] == "close"


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


# -- options of service checks ---------------------------------------------------


def test_a_service_check_carries_tags_timeout_and_critical(app: Flask) -> None:
    """A readiness database check without a wrapper: the service's own
    check, tagged, keeps the value its factory observed."""
    app.config.update(
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
        HEALTHCHECK_SHOW_DETAILS=True,
        HEALTHCHECK_SERVICES=[
            "plain",
            {"name": "database", "tags": ["ready"], "timeout": 0.2},
            {"name": "search", "critical": False},
        ],
    )
    health = HealthCheck(app)
    release = threading.Event()
    slow = {"database": False, "search": False}

    @health.service("plain")
    def plain() -> str:
        return "ok"

    @health.service("database")
    def database() -> str:
        if slow["database"]:
            release.wait(5)
        observe(2.5, "ms")
        return "connection"

    @health.service("search")
    def search() -> str:
        if slow["search"]:
            raise ConnectionError("search down")
        return "client"

    client = app.test_client()
    ready = client.get("/readyz", headers={"Accept": "application/health+json"})
    assert ready.status_code == 200
    assert list(ready.get_json()["checks"]) == ["database"]
    (entry,) = ready.get_json()["checks"]["database"]
    assert (entry["observedValue"], entry["observedUnit"]) == (2.5, "ms")
    assert client.get("/livez").status_code == 200  # no check carries "live"

    slow["search"] = True
    response = client.get("/health")
    assert response.status_code == 200  # not critical: "warn"
    assert response.get_json()["data"]["checks"]["search"]["status"] == "fail"

    slow["database"] = True
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 500
        error = ready.get_json()["data"]["checks"]["database"]["error"]
        assert error == "timed out after 0.2 s"
    finally:
        release.set()


def test_service_options_from_the_constructor_and_the_environment(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = HealthCheck(
        services=[{"name": "memory_backend", "tags": ("ready",), "critical": True}]
    )
    health.init_app(app)
    (check,) = get_state(app).checks()
    assert (check.name, check.tags, check.timeout) == (
        "memory_backend",
        frozenset({"ready"}),
        None,
    )
    monkeypatch.setenv(
        "FLASK_HEALTHCHECK_SERVICES",
        '["memory_backend", {"name": "cursor_backend", "tags": ["ready"],'
        ' "timeout": 2}]',
    )
    other = Flask("other")
    other.config.from_prefixed_env()
    HealthCheck(other)
    plain, database = get_state(other).checks()
    assert (plain.name, plain.tags, plain.timeout) == (
        "memory_backend",
        frozenset(),
        None,
    )
    assert (database.tags, database.timeout) == (frozenset({"ready"}), 2.0)


def test_a_plain_service_name_is_the_same_check_as_before() -> None:
    assert service_check("database") == service_check(ServiceCheckOptions("database"))
    check = service_check("database")
    assert (check.tags, check.timeout, check.critical) == (frozenset(), None, True)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "db", "tag": ["ready"]},
            "HEALTHCHECK_SERVICES[1] has the unknown key 'tag'; the keys are"
            " name, tags, timeout, critical",
        ),
        ({"tags": ["ready"]}, "HEALTHCHECK_SERVICES[1] needs a 'name'"),
        ({"name": "not a name"}, "HEALTHCHECK_SERVICES[1]['name'] must be a"),
        (
            {"name": "db", "tags": "ready"},
            "HEALTHCHECK_SERVICES[1]['tags'] must be a list of tags such as"
            " ['ready'], got 'ready'",
        ),
        ({"name": "db", "tags": [""]}, "non-empty strings"),
        ({"name": "db", "timeout": 0}, "HEALTHCHECK_SERVICES[1]['timeout'] must"),
        ({"name": "db", "timeout": "2"}, "a number of seconds"),
        (
            {"name": "db", "critical": "yes"},
            "HEALTHCHECK_SERVICES[1]['critical'] must be True or False",
        ),
        (3, "HEALTHCHECK_SERVICES[1] must be a service name such as 'database',"),
    ],
)
def test_bad_service_options_name_the_key(app: Flask, entry: Any, message: str) -> None:
    app.config["HEALTHCHECK_SERVICES"] = ["memory_backend", entry]
    with pytest.raises(ConfigurationError) as info:
        HealthCheck(app)
    assert message in str(info.value)
