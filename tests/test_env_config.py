"""Every ``HEALTHCHECK_*`` key from the environment, as docs/configuration.md shows it,
through ``app.config.from_prefixed_env()``.

The table is generated from ``flask_healthcheck.config_keys.KEYS`` by
:func:`keys_table`; ``UPDATE_DOCS=1`` rewrites it."""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import ConfigurationError, HealthCheck
from flask_healthcheck.config import (
    DEFAULTS,
    ServiceCheckOptions,
    Settings,
    read_settings,
)
from flask_healthcheck.config_keys import KEYS
from flask_healthcheck.state import get_state

from .helpers import (
    SUCCESS,
    bounded,
    health_or_refusal,
    run_in,
    slow_ok,
)

PAGE = Path(__file__).parent.parent / "docs" / "configuration.md"
MARKER = "<!-- env-table:"
END = "<!-- end of env-table -->"


def env_table() -> dict[str, tuple[str, str]]:
    """docs/configuration.md's table after :data:`MARKER`: key to (variable, value)."""
    text = PAGE.read_text()
    rows: dict[str, tuple[str, str]] = {}
    for line in text[text.index(MARKER) :].splitlines()[3:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        key, example = cells[0], cells[-1]
        (assignment,) = shlex.split(example.strip("`"))
        variable, value = assignment.split("=", 1)
        rows[key.strip("`")] = (variable, value)
    return rows


def check() -> bool:
    return True


#: What each example becomes, by the attribute of :class:`Settings`.
EXPECTED: dict[str, Any] = {
    "url": "/status",
    "services": (ServiceCheckOptions("memory_backend"),),
    "callable": check,
    "timeout": 2.5,
    "cache_ttl": 5.0,
    "show_details": False,
    "failure_status": 503,
    "warn_status": 200,
    "interval": 15.0,
    "service_id": "orders-api",
    "version": "1.4.2",
    "release_id": "20250501",
    "description": "Order taking and payment",
    "html_refresh": 30,
    "threads": False,
}


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    app = Flask(__name__)
    app.config.from_prefixed_env()
    HealthCheck(app)
    return get_state(app).settings


def keys_table() -> str:
    """docs/configuration.md's table of keys, made from :data:`KEYS`."""
    lines = [
        "| key | type | default | meaning | environment |",
        "|---|---|---|---|---|",
    ]
    for key in KEYS:
        default = key.shown or (
            f'"{key.default}"' if isinstance(key.default, str) else repr(key.default)
        )
        lines.append(
            f"| `{key.name}` | {key.type} | `{default}` | {key.meaning}"
            f" | `FLASK_{key.name}={key.env}` |"
        )
    return "\n".join(lines) + "\n"


def test_the_docs_table_is_made_from_the_keys() -> None:
    """One source: the table lists exactly :data:`KEYS`, with their
    defaults, meanings and examples, in their order."""
    text = PAGE.read_text()
    start = text.index("\n", text.index(MARKER)) + 1
    end = text.index(END, start)
    table = keys_table()
    if text[start:end] != table and os.environ.get("UPDATE_DOCS") == "1":
        PAGE.write_text(text[:start] + table + text[end:])
        return
    assert text[start:end] == table, (
        "The table of keys in docs/configuration.md differs from"
        " flask_healthcheck/config_keys.py (run with UPDATE_DOCS=1 to rewrite"
        " it):\n" + table
    )


def test_the_defaults_and_the_settings_come_from_the_keys() -> None:
    """``DEFAULTS`` is :data:`KEYS`', and ``read_settings`` reads every key
    and no other: a key added to one place alone fails here."""
    assert DEFAULTS == {key.name: key.default for key in KEYS}
    read: list[str] = []

    class Recording(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            read.append(key)
            return super().__getitem__(key)

    read_settings(Recording(DEFAULTS), {})
    assert sorted(set(read)) == sorted(DEFAULTS)


def test_the_readme_table_covers_every_key() -> None:
    assert list(env_table()) == list(DEFAULTS)
    for key, (variable, _) in env_table().items():
        assert variable == f"FLASK_{key}"


def test_every_readme_example_configures_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("myapp.health")
    module.check = check  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myapp", types.ModuleType("myapp"))
    monkeypatch.setitem(sys.modules, "myapp.health", module)
    env = dict(env_table().values())
    monkeypatch.setenv("FLASK_HEALTHCHECK_INTERVAL", "0")  # no refresher thread
    del env["FLASK_HEALTHCHECK_INTERVAL"]
    settings = settings_from_env(monkeypatch, **env)
    for name, value in EXPECTED.items():
        if name != "interval":
            assert getattr(settings, name) == value, name
    assert [(e.url, sorted(e.tags or ())) for e in settings.endpoints] == [
        ("/livez", ["live"]),
        ("/readyz", ["ready"]),
    ]
    interval = settings_from_env(
        monkeypatch, FLASK_HEALTHCHECK_INTERVAL=env_table()["HEALTHCHECK_INTERVAL"][1]
    )
    assert interval.interval == EXPECTED["interval"]


@pytest.mark.parametrize(
    ("variable", "value", "name", "text"),
    [
        ("FLASK_HEALTHCHECK_RELEASE_ID", "20250501", "release_id", "20250501"),
        ("FLASK_HEALTHCHECK_VERSION", "2", "version", "2"),
        ("FLASK_HEALTHCHECK_SERVICE_ID", "4711", "service_id", "4711"),
        ("FLASK_HEALTHCHECK_DESCRIPTION", "-1", "description", "-1"),
    ],
)
def test_digits_are_text_settings_as_they_were_written(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, name: str, text: str
) -> None:
    """Issue 10.6: ``from_prefixed_env`` parses them as ints, which raised
    ``ConfigurationError`` at start-up."""
    assert getattr(settings_from_env(monkeypatch, **{variable: value}), name) == text


def test_a_float_is_taken_with_a_warning_that_says_how_to_keep_the_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        settings = settings_from_env(
            monkeypatch, FLASK_HEALTHCHECK_RELEASE_ID="123e456"
        )
    assert settings.release_id == "inf"
    assert "HEALTHCHECK_RELEASE_ID is the number inf" in caplog.text
    assert "loads=str" in caplog.text


def test_the_loads_str_tip_keeps_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/configuration.md's tip, as written there."""
    monkeypatch.setenv("HEALTH_TEXT_HEALTHCHECK_RELEASE_ID", "123e456")
    monkeypatch.setenv("FLASK_HEALTHCHECK_TIMEOUT", "2.5")
    text = PAGE.read_text()
    tip = re.search(
        r"```python\n(app\.config\.from_prefixed_env\(\)\n.*?)```", text, re.S
    )
    assert tip is not None
    app = Flask(__name__)
    exec(tip.group(1), {"app": app})
    HealthCheck(app)
    settings = get_state(app).settings
    assert (settings.release_id, settings.timeout) == ("123e456", 2.5)


# -- bad and extreme values ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("TIMEOUT", "NaN"),
        ("TIMEOUT", "nan"),  # not JSON: stays text
        ("TIMEOUT", "-1"),
        ("TIMEOUT", "0"),
        ("TIMEOUT", "true"),
        ("CACHE_TTL", "-Infinity"),
        ("INTERVAL", "NaN"),
        ("SHOW_DETAILS", '"true"'),  # the text "true", not the bool
        ("FAILURE_STATUS", "200"),
        ("FAILURE_STATUS", "5e2"),
        ("HTML_REFRESH", "1.5"),
        ("URL", '"health"'),
    ],
)
def test_bad_values_from_the_environment_fail_at_init_app_naming_the_key(
    env_app: Any, key: str, text: str
) -> None:
    app = env_app(key, text)
    with pytest.raises(ConfigurationError, match=f"HEALTHCHECK_{key}"):
        HealthCheck(app)


def test_true_from_the_environment_shows_details(env_app: Any) -> None:
    app = env_app("SHOW_DETAILS", "true")
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    body = FlaskClient(app).get("/health").get_json()
    assert body["data"]["checks"]["database"]["status"] == "pass"


@pytest.mark.parametrize("text", ["Infinity", "1e309", "1e10"])
def test_a_huge_timeout_from_the_environment_is_refused_or_works(
    env_app: Any, text: str
) -> None:
    app = env_app("TIMEOUT", text)
    health = health_or_refusal(app, "HEALTHCHECK_TIMEOUT")
    if health is not None:  # else refused: the config is checked at start
        health.add_check(slow_ok, name="database")
        response = bounded(lambda: FlaskClient(app).get("/health"), 2, "the probe")
        assert (response.status_code, response.data) == (200, SUCCESS)
        assert bounded(lambda: run_in(app, health), 2, "health.run()") == "pass"
