"""Bad configuration fails early, with a message that names the key and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import ConfigurationError, HealthCheck
from flask_healthcheck.state import get_state

from .helpers import (
    SUCCESS,
    Counted,
    bounded,
    health_or_refusal,
    slow_ok,
    wait_for,
)


def assert_refused(app: Flask, key: str, value: Any, message: str) -> None:
    """``HealthCheck(app)`` with ``key`` set to ``value`` fails with a
    message that names the key and says ``message``."""
    app.config[key] = value
    with pytest.raises(ConfigurationError) as info:
        HealthCheck(app)
    assert message in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("HEALTHCHECK_SERVICES", "database", "HEALTHCHECK_SERVICES must be a list"),
        ("HEALTHCHECK_SERVICES", ["ok", 3], "got 3 in ['ok', 3]"),
        ("HEALTHCHECK_SERVICES", ["not a name"], "Python identifiers"),
        ("HEALTHCHECK_CALLABLE", 42, "HEALTHCHECK_CALLABLE must be a function"),
        ("HEALTHCHECK_CALLABLE", "nowhere.module:func", "can't be imported"),
        ("HEALTHCHECK_TIMEOUT", "10", "HEALTHCHECK_TIMEOUT must be a number"),
        ("HEALTHCHECK_TIMEOUT", 0, "greater than 0, got 0"),
        ("HEALTHCHECK_TIMEOUT", True, "HEALTHCHECK_TIMEOUT must be a number"),
        (
            "HEALTHCHECK_CACHE_TTL",
            -1,
            "HEALTHCHECK_CACHE_TTL must be a number of seconds 0 or more",
        ),
        ("HEALTHCHECK_CACHE_TTL", float("nan"), "HEALTHCHECK_CACHE_TTL"),
        ("HEALTHCHECK_INTERVAL", "5s", "HEALTHCHECK_INTERVAL must be a number"),
        (
            "HEALTHCHECK_URL",
            "health",
            "HEALTHCHECK_URL must be a path starting with '/'",
        ),
        ("HEALTHCHECK_URL", "/health/", "not ending with '/'"),
        (
            "HEALTHCHECK_SHOW_DETAILS",
            "yes",
            "HEALTHCHECK_SHOW_DETAILS must be True, False",
        ),
        ("HEALTHCHECK_FAILURE_STATUS", 200, "from 400 to 599, got 200"),
        ("HEALTHCHECK_RUN_DIR", "run/health", "must be an absolute path"),
        ("HEALTHCHECK_RUN_DIR", 3, "HEALTHCHECK_RUN_DIR must be an absolute path"),
        (
            "HEALTHCHECK_WARN_STATUS",
            "200",
            "HEALTHCHECK_WARN_STATUS must be an HTTP status",
        ),
    ],
)
def test_bad_config_value_names_the_key(
    app: Flask, key: str, value: Any, message: str
) -> None:
    assert_refused(app, key, value, message)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"services": "memory_backend"}, "HEALTHCHECK_SERVICES must be a list"),
        ({"callable": "not callable at all"}, "HEALTHCHECK_CALLABLE"),
        ({"url": "no-slash"}, "HEALTHCHECK_URL"),
    ],
)
def test_bad_constructor_arguments_fail_at_once(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        HealthCheck(**options)


def test_constructor_arguments_override_config(app: Flask) -> None:
    app.config["HEALTHCHECK_URL"] = "/from-config"
    HealthCheck(app, url="/from-argument")
    client = app.test_client()
    assert client.get("/from-argument").status_code == 200
    assert client.get("/from-config").status_code == 404


def test_defaults_are_set_on_the_config(app: Flask) -> None:
    HealthCheck(app)
    assert app.config["HEALTHCHECK_URL"] == "/health"
    assert app.config["HEALTHCHECK_SERVICES"] == []
    assert app.config["HEALTHCHECK_CALLABLE"] is None
    assert app.config["HEALTHCHECK_TIMEOUT"] == 10.0
    assert app.config["HEALTHCHECK_CACHE_TTL"] == 0.0
    assert app.config["HEALTHCHECK_SHOW_DETAILS"] is False
    assert app.config["HEALTHCHECK_FAILURE_STATUS"] == 500
    assert app.config["HEALTHCHECK_WARN_STATUS"] == 200
    assert app.config["HEALTHCHECK_INTERVAL"] == 0.0
    run_dir = app.config["HEALTHCHECK_RUN_DIR"]
    assert run_dir == os.path.join(
        tempfile.gettempdir(), f"flask-healthcheck-{os.getuid()}"
    )


def test_the_run_dir_default_is_made_on_first_use(tmp_path: Path) -> None:
    """Importing the extension does not look for the temp dir (which tries
    files on disk); a ``TMPDIR`` set after the import counts."""
    code = (
        "import os, tempfile\n"
        "from flask import Flask\n"
        "from flask_healthcheck import HealthCheck\n"
        "import flask_healthcheck.config_keys\n"
        "print(tempfile.tempdir)\n"
        f"os.environ['TMPDIR'] = {str(tmp_path)!r}\n"
        "app = Flask('app')\n"
        "HealthCheck(app)\n"
        "print(app.config['HEALTHCHECK_RUN_DIR'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "TEMP", "TMP")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "None",
        os.path.join(tmp_path, f"flask-healthcheck-{os.getuid()}"),
    ]


def test_init_app_twice_says_what_to_do(app: Flask) -> None:
    health = HealthCheck(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        health.init_app(app)


def test_use_without_init_app_says_what_to_do(app: Flask) -> None:
    health = HealthCheck()
    with (
        app.app_context(),
        pytest.raises(RuntimeError, match="forget to call 'init_app'"),
    ):
        health.run()


def test_unknown_service_name_is_a_configuration_error(app: Flask) -> None:
    health = HealthCheck(app, services=["databse"])
    with app.app_context(), pytest.raises(ConfigurationError) as info:
        health.run()
    message = str(info.value)
    assert "check 'databse' needs 'databse'" in message
    assert "known names: app, config, cursor_backend, memory_backend" in message


def test_a_typo_in_a_service_name_gets_a_suggestion(app: Flask) -> None:
    health = HealthCheck(app, services=["cursor_backnd"])
    with app.app_context(), pytest.raises(ConfigurationError) as info:
        health.run()
    assert "Did you mean 'cursor_backend'?" in str(info.value)


def test_unknown_name_is_reported_as_a_failing_configuration_check(app: Flask) -> None:
    app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    HealthCheck(app, services=["databse"])
    response = app.test_client().get("/health")
    assert response.status_code == 500
    error = response.json["data"]["checks"]["configuration"]["error"]  # type: ignore[index]
    assert error.startswith("ConfigurationError: check 'databse' needs 'databse'")


def test_unresolvable_parameter_names_the_chain(app: Flask) -> None:
    health = HealthCheck(app)

    @health.service("database")
    def database(engine: object) -> object:
        return engine

    @health.check
    def migrations(database: object) -> bool:
        return True

    with app.app_context(), pytest.raises(ConfigurationError) as info:
        health.run()
    assert "check 'migrations' -> service 'database' needs 'engine'" in str(info.value)


def test_cycles_name_the_chain(app: Flask) -> None:
    health = HealthCheck(app)
    health.add_service("a", lambda b: b)
    health.add_service("b", lambda c: c)
    health.add_service("c", lambda a: a)
    with app.app_context(), pytest.raises(ConfigurationError, match="a -> b -> c -> a"):
        health.run()


def test_an_unused_service_with_an_unknown_parameter_names_itself_once(
    app: Flask,
) -> None:
    health = HealthCheck(app)
    health.add_service("orphan", lambda missing: missing)
    with app.app_context(), pytest.raises(ConfigurationError) as info:
        health.run()
    assert str(info.value).startswith("service 'orphan' needs 'missing',")


def test_neither_option_still_validates_registered_services(app: Flask) -> None:
    health = HealthCheck(app)
    health.add_service("orphan", lambda missing: missing)
    assert app.test_client().get("/health").status_code == 500


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"timeout": -1},
            "timeout of check 'c' must be a number of seconds greater than 0",
        ),
        ({"timeout": "1"}, "timeout of check 'c' must be a number"),
        ({"tags": "ready"}, "tags of check 'c' must be a list of strings"),
        ({"name": ""}, "A check name must be a non-empty string"),
        ({"name": "a/b"}, "without '/'"),
    ],
)
def test_bad_check_options_fail_at_registration(
    options: dict[str, Any], message: str
) -> None:
    health = HealthCheck()

    def c() -> bool:
        return True

    with pytest.raises(ConfigurationError, match=message):
        health.add_check(c, **options)


def test_bad_service_registration_fails_at_once() -> None:
    health = HealthCheck()
    with pytest.raises(ConfigurationError, match="must be a Python identifier"):
        health.add_service("not-a-name", lambda: None)
    with pytest.raises(ConfigurationError, match="is built in"):
        health.add_service("config", lambda: None)
    with pytest.raises(ConfigurationError, match="must be callable"):
        health.add_service("x", 3)  # type: ignore[arg-type]


def test_duplicate_check_names_are_rejected(app: Flask) -> None:
    health = HealthCheck(app, services=["memory_backend"])
    with pytest.raises(ConfigurationError, match="already registered"):
        health.add_check(lambda: True, name="x")
        health.add_check(lambda: True, name="x")
    # At registration too when a service check has the name (issue 10).
    with pytest.raises(ConfigurationError, match="already registered"):
        health.add_check(lambda: True, name="memory_backend")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "HEALTHCHECK_ENDPOINTS",
            ["/livez"],
            "HEALTHCHECK_ENDPOINTS must be a dict of URL paths to lists of tags,"
            " such as {'/livez': ['live'], '/readyz': ['ready']}, got ['/livez'].",
        ),
        (
            "HEALTHCHECK_ENDPOINTS",
            {"livez": ["live"]},
            "Each URL in HEALTHCHECK_ENDPOINTS must be a path starting with '/'"
            " and not ending with '/', without '<', '>', '?', '#' or spaces, such"
            " as '/health', got 'livez'.",
        ),
        (
            "HEALTHCHECK_ENDPOINTS",
            {"/livez/<name>": ["live"]},
            "got '/livez/<name>'.",
        ),
        (
            "HEALTHCHECK_ENDPOINTS",
            {"/livez": "live"},
            "HEALTHCHECK_ENDPOINTS['/livez'] must be a non-empty list of tags such"
            " as ['live'], got 'live'.",
        ),
        (
            "HEALTHCHECK_ENDPOINTS",
            {"/livez": []},
            "HEALTHCHECK_ENDPOINTS['/livez'] must be a non-empty list of tags",
        ),
        (
            "HEALTHCHECK_ENDPOINTS",
            {"/livez": ["live", ""]},
            "got ['live', ''].",
        ),
        (
            "HEALTHCHECK_SERVICE_ID",
            ["orders"],
            "HEALTHCHECK_SERVICE_ID must be a non-empty string such as"
            " 'orders-api', or None, got ['orders'].",
        ),
        (
            "HEALTHCHECK_VERSION",
            True,
            "HEALTHCHECK_VERSION must be a non-empty string such as '1.4.2',"
            " or None, got True.",
        ),
        ("HEALTHCHECK_RELEASE_ID", "", "HEALTHCHECK_RELEASE_ID must be a non-empty"),
        (
            "HEALTHCHECK_DESCRIPTION",
            ["x"],
            "HEALTHCHECK_DESCRIPTION must be a non-empty string",
        ),
        (
            "HEALTHCHECK_HTML_REFRESH",
            2.5,
            "HEALTHCHECK_HTML_REFRESH must be a whole number of seconds, 0 or more"
            " (0 turns the reload off), such as 10, got 2.5.",
        ),
        ("HEALTHCHECK_HTML_REFRESH", -1, "got -1."),
        ("HEALTHCHECK_HTML_REFRESH", True, "got True."),
        ("HEALTHCHECK_URL", "/health?x=1", "without '<', '>', '?', '#' or spaces"),
    ],
)
def test_bad_endpoint_and_format_config_names_key_value_and_form(
    app: Flask, key: str, value: Any, message: str
) -> None:
    assert_refused(app, key, value, message)


def test_endpoint_and_format_defaults_are_set_on_the_config(app: Flask) -> None:
    HealthCheck(app)
    assert app.config["HEALTHCHECK_ENDPOINTS"] == {}
    assert app.config["HEALTHCHECK_SERVICE_ID"] is None
    assert app.config["HEALTHCHECK_VERSION"] is None
    assert app.config["HEALTHCHECK_RELEASE_ID"] is None
    assert app.config["HEALTHCHECK_DESCRIPTION"] is None
    assert app.config["HEALTHCHECK_HTML_REFRESH"] == 10


def test_endpoint_defaults_are_not_shared_between_apps() -> None:
    first, second = Flask("first"), Flask("second")
    HealthCheck(first)
    HealthCheck(second)
    first.config["HEALTHCHECK_ENDPOINTS"]["/x"] = ["x"]
    assert second.config["HEALTHCHECK_ENDPOINTS"] == {}


@pytest.mark.parametrize(
    ("url", "tags", "message"),
    [
        ("livez", ["live"], "The URL of an endpoint in add_endpoint() must be a path"),
        ("/livez/", ["live"], "not ending with '/'"),
        ("/livez", "live", "The tags of endpoint '/livez' must be a non-empty list"),
        ("/livez", [], "got []."),
    ],
)
def test_bad_add_endpoint_arguments_fail_at_once(
    url: str, tags: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        HealthCheck().add_endpoint(url, tags=tags)
    assert message in str(info.value)


# -- infinite and huge timings -------------------------------------------------


def test_an_infinite_check_timeout_is_refused_at_registration(app: Flask) -> None:
    health = HealthCheck(app)
    try:
        health.add_check(slow_ok, name="database", timeout=float("inf"))
    except ConfigurationError:
        return
    response = bounded(lambda: FlaskClient(app).get("/health"), 2, "the probe")
    assert (response.status_code, response.data) == (200, SUCCESS)


@pytest.mark.parametrize("text", ["Infinity", "1e10"])
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_huge_interval_is_refused_or_keeps_the_refresher_alive(
    env_app: Any, text: str
) -> None:
    app = env_app("INTERVAL", text)
    health = health_or_refusal(app, "HEALTHCHECK_INTERVAL")
    if health is None:
        return
    runs: list[int] = []
    health.add_check(Counted(runs, True), name="database")
    health.start(app)
    wait_for(lambda: bool(runs), 2)
    time.sleep(0.2)
    assert get_state(app).refresher.running, "the refresh thread died"
