"""``flask health``: the table, ``--json``, ``--tag``, colour and exit statuses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo

from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck
from flask_healthcheck.cli import health_command

SECRET = "pa55word-in-config"


def make(app: Flask, **config: Any) -> HealthCheck:
    app.config.update(config)
    app.config["REDIS_URL"] = f"redis://:{SECRET}@cache:6379/0"
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database", tags=["ready", "live"])
    health.add_check(
        lambda: CheckResult(observed_value=42, observed_unit="%"),
        name="disk_space",
        tags=["ready"],
        component_type="system",
    )
    return health


def add_failure(health: HealthCheck) -> None:
    def cache(config: Any) -> bool:
        raise ConnectionError(f"cannot reach {config['REDIS_URL']}")

    health.add_check(cache, tags=["ready"])


def invoke(app: Flask, *args: str, color: bool = False) -> Result:
    return app.test_cli_runner().invoke(args=["health", *args], color=color)


def test_a_table_for_people(app: Flask) -> None:
    make(app)
    result = invoke(app)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DURATION", "ERROR"]
    assert lines[1].split()[:2] == ["database", "pass"]
    assert lines[2].split()[:2] == ["disk_space", "pass"]
    # Aligned: every column starts at the same place on every line.
    assert lines[0].index("STATUS") == lines[1].index("pass") == lines[2].index("pass")
    ends = {line.index(" ms") + 3 for line in lines[1:3]}
    assert ends == {lines[0].index("DURATION") + len("DURATION")}
    assert lines[-1] == "Health: pass (2 checks)"
    assert "\x1b[" not in result.output  # no colour: not a terminal


def test_a_failure_exits_1_with_the_redacted_error(app: Flask) -> None:
    add_failure(make(app))
    result = invoke(app)
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if "cache" in line)
    assert line.split()[:2] == ["cache", "fail"]
    assert line.endswith("ConnectionError: cannot reach redis://:***@cache:6379/0")
    assert SECRET not in result.output
    assert result.stdout.splitlines()[-1] == "Health: fail (3 checks)"


def test_colour_when_the_output_is_a_terminal(app: Flask) -> None:
    add_failure(make(app))
    result = invoke(app, color=True)
    assert "\x1b[32mpass" in result.output  # green
    assert "\x1b[31m\x1b[1mfail" in result.output  # bold red


def test_tag_selects_checks(app: Flask) -> None:
    add_failure(make(app))
    result = invoke(app, "--tag", "live")
    assert result.exit_code == 0
    assert "database" in result.stdout
    assert "cache" not in result.stdout
    result = invoke(app, "--tag", "live", "--tag", "ready")
    assert result.exit_code == 1


def test_json_prints_health_json_with_details(app: Flask) -> None:
    add_failure(make(app, HEALTHCHECK_SERVICE_ID="orders-api"))
    result = invoke(app, "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["status"] == "fail"
    assert document["serviceId"] == "orders-api"
    assert list(document["checks"]) == ["database", "disk_space", "cache"]
    (disk,) = document["checks"]["disk_space"]
    assert (disk["observedValue"], disk["observedUnit"]) == (42, "%")
    assert disk["componentType"] == "system"
    (cache,) = document["checks"]["cache"]
    assert cache["output"] == "ConnectionError: cannot reach redis://:***@cache:6379/0"
    assert SECRET not in result.output


def test_verbose_shows_observed_values_and_tags(app: Flask) -> None:
    health = make(app)
    health.add_check(lambda: False, name="search", critical=False)
    result = invoke(app, "--verbose")
    assert result.exit_code == 0  # warn still serves
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "CHECK",
        "STATUS",
        "DURATION",
        "OBSERVED",
        "TAGS",
        "CRITICAL",
        "ERROR",
    ]
    assert "42 %" in lines[2] and "ready" in lines[2]
    assert "live,ready" in lines[1]
    assert lines[3].split()[:2] == ["search", "fail"]
    assert " no " in lines[3]
    assert lines[-1] == "Health: warn (3 checks)"


def test_runs_fresh_every_time_without_the_cache(app: Flask) -> None:
    health = make(app, HEALTHCHECK_CACHE_TTL=60.0)
    state = {"up": True}
    health.add_check(lambda: state["up"], name="flappy")
    assert invoke(app).exit_code == 0
    state["up"] = False
    assert invoke(app).exit_code == 1


def test_a_configuration_error_exits_2_on_stderr(app: Flask) -> None:
    HealthCheck(app, services=["databse"])
    result = invoke(app)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: the health configuration is wrong: check 'databse' needs 'databse'"
    )
    assert result.stdout == ""


def test_an_app_without_the_extension_exits_2() -> None:
    app = Flask("plain")
    result = CliRunner().invoke(health_command, obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 2
    assert "does not use flask-healthcheck" in result.stderr


def test_a_configuration_error_while_loading_the_app_exits_2() -> None:
    def create_app() -> Flask:
        app = Flask("broken")
        app.config["HEALTHCHECK_TIMEOUT"] = "ten"
        HealthCheck(app)
        return app

    result = CliRunner().invoke(health_command, obj=ScriptInfo(create_app=create_app))
    assert result.exit_code == 2
    assert "HEALTHCHECK_TIMEOUT must be a number" in result.stderr


def test_help_lists_the_options(app: Flask) -> None:
    HealthCheck(app)
    result = invoke(app, "--help")
    assert result.exit_code == 0
    for option in ("--tag", "--json", "--verbose"):
        assert option in result.output


ROOT = Path(__file__).parent.parent

APP_MODULE = """
from flask import Flask
from flask_healthcheck import HealthCheck

app = Flask(__name__)
{config}
health = HealthCheck(app)
health.add_check(lambda: True, name="database", tags=["live"])
"""

PLAIN_APP_MODULE = """
from flask import Flask

app = Flask(__name__)
"""


def declared_entry_points() -> dict[str, dict[str, str]]:
    """pyproject.toml's ``[project.entry-points."group"]`` tables, read by
    hand (``tomllib`` is Python 3.11's)."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        header = re.fullmatch(r'\[project\.entry-points\."?([^"\]]+)"?\]', line.strip())
        if header:
            current = groups.setdefault(header.group(1), {})
        elif line.startswith("["):
            current = None
        elif current is not None and "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            current[name] = value.strip('"')
    return groups


def project_metadata(into: Path) -> Path:
    """A ``dist-info`` with the entry points this tree's pyproject.toml
    declares, for a directory put first on ``PYTHONPATH``: a subprocess
    then sees those, not the ones of an editable install made from an older
    pyproject.toml (``importlib.metadata`` takes the first distribution of
    a name on ``sys.path``)."""
    version = re.search(
        r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M
    )
    assert version is not None
    info = into / f"flask_healthchecks-{version.group(1)}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: flask-healthchecks\n"
        f"Version: {version.group(1)}\n"
    )
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items())
            for group, points in declared_entry_points().items()
        )
    )
    return into


def run_flask(
    tmp_path: Path, module: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m flask --app probe_app ...`` with ``module`` as probe_app.py,
    and this tree's package and metadata."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "probe_app.py").write_text(textwrap.dedent(module))
    metadata = project_metadata(tmp_path / "metadata")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FLASK_APP", None)
    env["PYTHONPATH"] = os.pathsep.join([str(metadata), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "probe_app", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("config", "code", "expect"),
    [
        ("", 0, "Health: pass (1 check)"),
        (
            "app.config['HEALTHCHECK_SERVICES'] = ['databse']",
            2,
            "Error: the health configuration is wrong: check 'databse' needs",
        ),
    ],
)
def test_flask_app_health_in_a_real_process(
    tmp_path: Path, config: str, code: int, expect: str
) -> None:
    """What a Docker ``HEALTHCHECK CMD flask --app ... health`` runs."""
    process = run_flask(tmp_path, APP_MODULE.format(config=config), "health")
    assert process.returncode == code, process.stderr
    assert expect in (process.stdout if code < 2 else process.stderr)
    assert "Traceback" not in process.stderr


def test_a_configuration_error_while_creating_the_app_fails_the_command(
    tmp_path: Path,
) -> None:
    """``init_app`` raising leaves Flask no app to find ``health`` in: the
    command fails with Flask's traceback, whose last line names the key."""
    config = "app.config['HEALTHCHECK_TIMEOUT'] = '1s'"
    process = run_flask(tmp_path, APP_MODULE.format(config=config), "health")
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("flask_healthcheck.errors.ConfigurationError:")
    assert "HEALTHCHECK_TIMEOUT must be a number" in last


def test_only_apps_with_the_extension_have_the_command(tmp_path: Path) -> None:
    """``flask health`` is registered by ``init_app`` alone (no
    ``flask.commands`` entry point): it is not in every Flask app of the
    environment."""
    plain = run_flask(tmp_path / "plain", PLAIN_APP_MODULE, "health")
    assert plain.returncode == 2
    assert "No such command 'health'" in plain.stderr
    listed = run_flask(tmp_path / "plain_help", PLAIN_APP_MODULE, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "health" not in listed.stdout
    listed = run_flask(tmp_path / "help", APP_MODULE.format(config=""), "--help")
    assert listed.returncode == 0, listed.stderr
    assert "  health " in listed.stdout


def test_the_project_declares_no_flask_command() -> None:
    assert "flask.commands" not in declared_entry_points()
    plain = Flask("plain")
    assert plain.cli.get_command(click.Context(plain.cli), "health") is None


def test_configuration_error_is_the_public_one() -> None:
    # The CLI catches what init_app raises; the two must be the same class.
    from flask_healthcheck import errors

    assert ConfigurationError is errors.ConfigurationError
