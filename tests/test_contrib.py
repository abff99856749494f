"""Ready-made services that need no server of their own: HTTP, disk, SQLite.

The real PostgreSQL and Redis servers are in ``test_real_servers.py``.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck
from flask_healthcheck.contrib import DiskUsage, HTTPResult, disk, http
from flask_healthcheck.contrib.sqlalchemy import (
    _timeout_parameters,
    database_url,
    engine_for,
    sqlite_file,
)
from flask_healthcheck.state import get_state

from .helpers import LocalHTTPServer


def run_one(app: Flask, name: str) -> CheckResult:
    """Run the checks of ``app`` and return the result of check ``name``."""
    with app.app_context():
        report = get_state(app).run(fresh=True, deliver=True)
    (result,) = (r for r in report.checks if r.name == name)
    assert isinstance(result, CheckResult)
    return result


# -- http() ------------------------------------------------------------------


def test_http_passes_and_reports_the_response_time(
    app: Flask, http_server: LocalHTTPServer
) -> None:
    health = HealthCheck(app, services=["search"])
    health.add_service("search", http(http_server.url("/_cluster/health")))
    seen: list[HTTPResult] = []
    health.add_check(lambda search: seen.append(search), name="green")
    result = run_one(app, "search")
    assert result.status == "pass", result.error
    assert result.observed_unit == "ms"
    assert 0 < result.observed_value < 1000
    with app.app_context():
        assert health.run().status == "pass"
    assert seen[0].json() == {"status": "green"}
    assert seen[0].status == 200
    assert http_server.requests[0].headers["User-Agent"] == "flask-healthcheck"


@pytest.mark.parametrize(
    ("path", "options", "status"),
    [
        ("/status/204", {}, "pass"),
        ("/redirect", {}, "pass"),
        ("/status/404", {}, "fail"),
        ("/status/503", {}, "fail"),
        ("/status/503", {"expect_status": 503}, "pass"),
        ("/status/200", {"expect_status": [201, 202]}, "fail"),
    ],
)
def test_http_status(
    app: Flask,
    http_server: LocalHTTPServer,
    path: str,
    options: dict[str, Any],
    status: str,
) -> None:
    HealthCheck(app, services=["site"]).add_service(
        "site", http(http_server.url(path), **options)
    )
    result = run_one(app, "site")
    assert result.status == status
    if status == "fail":
        assert result.error is not None
        assert result.error.startswith(f"HTTPStatusError: GET {http_server.url(path)}")
    # A redirect is an answer: it is not followed.
    assert len(http_server.requests) == 1


def test_http_credentials_never_appear_in_errors(
    app: Flask, http_server: LocalHTTPServer
) -> None:
    url = http_server.url("/status/500?token=t0ken-value")
    url = url.replace("http://", "http://admin:pa55-word@")
    HealthCheck(app, services=["site"]).add_service("site", http(url))
    result = run_one(app, "site")
    assert result.status == "fail"
    assert result.error == (
        f"HTTPStatusError: GET {http_server.url('/status/500')} answered 500"
        " Internal Server Error, expected 2xx or 3xx"
    )
    request = http_server.requests[0]
    # Sent as Basic authentication, not as part of the URL.
    assert request.headers["Authorization"] == "Basic YWRtaW46cGE1NS13b3Jk"
    assert request.path == "/status/500?token=t0ken-value"


def test_http_to_a_closed_port_fails_at_once(app: Flask) -> None:
    HealthCheck(app, services=["site"]).add_service(
        "site", http("http://127.0.0.1:1/health")
    )
    result = run_one(app, "site")
    assert result.status == "fail"
    assert result.error is not None
    assert result.error.startswith(
        "ConnectionError: GET http://127.0.0.1:1/health failed:"
    )
    assert result.duration < 1


def test_http_gives_up_before_the_checks_timeout(
    app: Flask, http_server: LocalHTTPServer
) -> None:
    app.config["HEALTHCHECK_TIMEOUT"] = 0.5
    health = HealthCheck(app, services=["slow"])
    health.add_service("slow", http(http_server.url("/slow"), headers={"X-Delay": "2"}))
    result = run_one(app, "slow")
    assert result.status == "fail"
    assert result.error is not None
    # The call gave up by itself (its own message), not the runner.
    assert result.error.startswith("TimeoutError: GET")
    assert re.search(r"no answer within 0\.[34]\d* s", result.error)
    assert result.duration < 0.5


def test_http_own_timeout_wins_when_shorter(
    app: Flask, http_server: LocalHTTPServer
) -> None:
    health = HealthCheck(app, services=["slow"])
    health.add_service(
        "slow",
        http(http_server.url("/slow"), timeout=0.2, headers={"X-Delay": "2"}),
    )
    start = time.perf_counter()
    result = run_one(app, "slow")
    assert result.status == "fail"
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("ftp://example.com/",), {}, "http:// or https:// URL"),
        (("http:///path",), {}, "with a host"),
        (("http://h/",), {"timeout": 0}, "timeout of http()"),
        (("http://h/a b?token=x",), {}, "contains spaces or control characters"),
        (("http://h/",), {"expect_status": "200"}, "expect_status of http()"),
        (("http://h/",), {"expect_status": []}, "expect_status of http()"),
    ],
)
def test_http_bad_arguments_fail_at_registration(
    args: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        http(*args, **options)


# -- disk() ------------------------------------------------------------------


def test_disk_passes_and_reports_free_bytes(app: Flask, tmp_path: Path) -> None:
    health = HealthCheck(app, services=["scratch"])
    health.add_service("scratch", disk(tmp_path, min_free=1))
    seen: list[DiskUsage] = []
    health.add_check(lambda scratch: seen.append(scratch), name="uses")
    result = run_one(app, "scratch")
    assert result.status == "pass", result.error
    assert result.observed_unit == "bytes"
    free = shutil.disk_usage(tmp_path).free
    assert abs(result.observed_value - free) < 100 * 1024**2
    with app.app_context():
        health.run()
    assert seen[0].total >= seen[0].free > 0


@pytest.mark.parametrize(
    "options", [{"min_free": 2**62}, {"min_free_ratio": 1.0}], ids=str
)
def test_disk_fails_below_the_minimum(
    app: Flask, tmp_path: Path, options: dict[str, Any]
) -> None:
    HealthCheck(app, services=["scratch"]).add_service(
        "scratch", disk(tmp_path, **options)
    )
    result = run_one(app, "scratch")
    assert result.status == "fail"
    assert result.error is not None
    assert result.error.startswith("DiskSpaceError: ")
    assert f"free on {tmp_path}" in result.error


def test_disk_fails_for_a_missing_path(app: Flask, tmp_path: Path) -> None:
    HealthCheck(app, services=["volume"]).add_service(
        "volume", disk(tmp_path / "unmounted")
    )
    result = run_one(app, "volume")
    assert result.status == "fail"
    assert result.error is not None
    assert result.error.startswith("FileNotFoundError")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_free": -1}, "min_free of disk()"),
        ({"min_free": 1.5}, "min_free of disk()"),
        ({"min_free_ratio": 10}, "min_free_ratio of disk()"),
    ],
)
def test_disk_bad_arguments_fail_at_registration(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        disk("/", **options)


# -- sqlalchemy / cursor_backend without a server -----------------------------


def sqlite_database(path: Path) -> str:
    """Create an SQLite database at ``path``, as the app would; its URL."""
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


def test_sqlalchemy_reports_the_select_latency(app: Flask, tmp_path: Path) -> None:
    app.config["DATABASE_URL"] = sqlite_database(tmp_path / "app.db")
    HealthCheck(app, services=["sqlalchemy"])
    result = run_one(app, "sqlalchemy")
    assert result.status == "pass", result.error
    assert result.observed_unit == "ms"
    assert 0 < result.observed_value < result.duration * 1000


def test_sqlalchemy_engine_is_made_once_per_app(app: Flask, tmp_path: Path) -> None:
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_database(tmp_path / "app.db")
    health = HealthCheck(app)
    engines = []
    health.add_check(
        lambda cursor_backend: engines.append(cursor_backend.engine), name="db"
    )
    with app.app_context():
        health.run()
        health.run()
        assert engines[0] is engines[1] is engine_for(app, app.config)
    other = Flask("other")
    other.config.update(app.config)
    with other.app_context():
        assert engine_for(other, other.config) is not engines[0]
    # SQLite: a connection per check, closed in the thread that made it.
    assert engines[0].pool.__class__.__name__ == "NullPool"
    server = Flask("server")
    server.config["DATABASE_URL"] = "postgresql+psycopg://app@127.0.0.1:1/app"
    pooled = engine_for(server, server.config)
    assert pooled.pool.__class__.__name__ == "QueuePool"
    assert pooled.pool._pre_ping


def test_flask_sqlalchemys_engine_is_used(app: Flask, tmp_path: Path) -> None:
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_database(tmp_path / "app.db")
    db = SQLAlchemy(app)
    health = HealthCheck(app, services=["sqlalchemy"])
    engines = []
    health.add_check(lambda sqlalchemy: engines.append(sqlalchemy.engine), name="db")
    with app.app_context():
        report = health.run()
        assert report.status == "pass"
        assert engines == [db.engine]


def test_flask_sqlalchemy_with_a_broken_database_fails(
    app: Flask, tmp_path: Path
) -> None:
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'no' / 'app.db'}"
    SQLAlchemy(app)
    HealthCheck(app, services=["sqlalchemy"])
    result = run_one(app, "sqlalchemy")
    assert result.status == "fail"
    assert result.error is not None
    assert result.error.startswith("OperationalError:")


MISSING = "a health check never creates the database it checks"


@pytest.mark.parametrize("flask_sqlalchemy", [False, True])
def test_a_missing_sqlite_file_fails_and_is_not_created(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flask_sqlalchemy: bool
) -> None:
    """README's ``sqlite:///app.db`` before the app made its database: the
    check used to pass, leaving an empty ``app.db`` behind."""
    monkeypatch.chdir(tmp_path)
    app.instance_path = str(tmp_path / "instance")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
    if flask_sqlalchemy:
        db = SQLAlchemy(app)  # relative paths are under app.instance_path
        expected = tmp_path / "instance" / "app.db"
    else:
        expected = tmp_path / "app.db"
    HealthCheck(app, services=["cursor_backend"])
    result = run_one(app, "cursor_backend")
    assert result.status == "fail"
    assert f"the SQLite database {str(expected)!r} does not exist" in (
        result.error or ""
    )
    assert MISSING in (result.error or "")
    assert not expected.exists()
    assert not (tmp_path / "app.db").exists()
    # Once the app has created it, the same check passes.
    if flask_sqlalchemy:
        with app.app_context():
            db.create_all()
    else:
        sqlite_database(expected)
    assert run_one(app, "cursor_backend").status == "pass"


def test_a_deleted_sqlite_file_fails_though_a_pooled_connection_answers(
    app: Flask, tmp_path: Path
) -> None:
    """Flask-SQLAlchemy pools SQLite file connections; one made before the
    file was deleted still answers, from the deleted file, so the check
    passed while every new connection of the app would start an empty
    database."""
    path = tmp_path / "app.db"
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_database(path)
    SQLAlchemy(app)
    HealthCheck(app, services=["cursor_backend"])
    assert run_one(app, "cursor_backend").status == "pass"
    path.unlink()
    result = run_one(app, "cursor_backend")
    assert result.status == "fail"
    assert f"the SQLite database {str(path)!r} does not exist" in (result.error or "")
    assert not path.exists()
    sqlite_database(path)
    assert run_one(app, "cursor_backend").status == "pass"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file::memory:?uri=true",
        "sqlite:///file:/shared?vfs=memdb&uri=true",  # SQLite 3.36+
    ],
)
def test_in_memory_sqlite_still_passes(app: Flask, url: str) -> None:
    app.config["DATABASE_URL"] = url
    HealthCheck(app, services=["sqlalchemy"])
    result = run_one(app, "sqlalchemy")
    assert result.status == "pass", result.error


def test_a_missing_sqlite_uri_file_fails(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "uri.db"
    app.config["DATABASE_URL"] = f"sqlite:///file:{path}?mode=rwc&uri=true"
    HealthCheck(app, services=["sqlalchemy"])
    assert MISSING in (run_one(app, "sqlalchemy").error or "")
    assert not path.exists()


@pytest.mark.parametrize(
    ("filename", "uri", "opened"),
    [
        ("/srv/app.db", False, "/srv/app.db"),
        (":memory:", False, None),
        ("", False, None),
        ("file:/srv/a%20b.db", True, "/srv/a b.db"),
        ("file:/srv/app.db?mode=rwc", True, "/srv/app.db"),
        ("file:/srv/app.db?mode=rw", True, "/srv/app.db"),
        ("file:/srv/app.db?mode=ro", True, "/srv/app.db"),
        ("file:shared?mode=memory&cache=shared", True, None),
        ("file::memory:", True, None),
        ("file:/shared?vfs=memdb", True, None),
        # With uri, only a name starting "file:" is a URI.
        ("/srv/a?b#c%20.db", True, "/srv/a?b#c%20.db"),
    ],
)
def test_which_file_an_sqlite_connection_opens(
    filename: str, uri: bool, opened: str | None
) -> None:
    assert sqlite_file(filename, uri) == opened


@pytest.mark.parametrize(
    ("database", "name"),
    [
        ("file:{path}?mode=ro&uri=true", "app.db"),
        ("file:{path}?mode=rw&uri=true", "app.db"),
        ("{path}?uri=true", "a?b#c.db"),
    ],
)
def test_a_missing_sqlite_file_fails_with_its_path_whatever_the_url(
    app: Flask, tmp_path: Path, database: str, name: str
) -> None:
    """Opened read-only or ``rw`` SQLite said only "unable to open database
    file"; and a plain path with ``uri=true`` was read as a URI: a name
    with ``?`` was cut there, and the check failed for a file that exists."""
    path = tmp_path / name
    quoted = urllib.parse.quote(str(path))  # SQLAlchemy unquotes it
    app.config["DATABASE_URL"] = "sqlite:///" + database.format(path=quoted)
    HealthCheck(app, services=["sqlalchemy"])
    error = run_one(app, "sqlalchemy").error or ""
    assert f"the SQLite database {str(path)!r} does not exist" in error
    assert not path.exists()
    sqlite_database(path)
    result = run_one(app, "sqlalchemy")
    assert result.status == "pass", result.error


def test_an_sqlite_path_that_is_a_directory_says_so(app: Flask, tmp_path: Path) -> None:
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path}"
    HealthCheck(app, services=["sqlalchemy"])
    error = run_one(app, "sqlalchemy").error or ""
    assert f"the SQLite database {str(tmp_path)!r} is not a file" in error


def test_sqlalchemy_not_installed_says_what_to_install(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    HealthCheck(app, services=["cursor_backend"])
    result = run_one(app, "cursor_backend")
    assert result.status == "fail"
    assert result.error == (
        "RuntimeError: SQLAlchemy is not installed:"
        " install flask-healthchecks[sqlalchemy]"
    )


def test_sqlalchemy_unset_says_what_to_set(app: Flask) -> None:
    HealthCheck(app, services=["sqlalchemy"])
    result = run_one(app, "sqlalchemy")
    assert result.error is not None
    assert "set SQLALCHEMY_DATABASE_URI or DATABASE_URL" in result.error


def test_a_malformed_database_url_is_not_quoted(app: Flask) -> None:
    app.config["DATABASE_URL"] = "postgresql+psycopg:/user:hunter22@/db:x:y"
    app.config["SQLALCHEMY_DATABASE_URI"] = "::not a url with pw hunter22"
    HealthCheck(app, services=["sqlalchemy"])
    result = run_one(app, "sqlalchemy")
    assert result.status == "fail"
    assert result.error is not None
    assert "hunter22" not in result.error
    assert "is not a valid SQLAlchemy URL" in result.error


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({"DATABASE_URL": "postgres://u:p@h/d"}, "postgresql://u:p@h/d"),
        ({"SQLALCHEMY_DATABASE_URI": "sqlite://", "DATABASE_URL": "x"}, "sqlite://"),
        ({"SQLALCHEMY_DATABASE_URI": "", "DATABASE_URL": "sqlite://"}, "sqlite://"),
    ],
)
def test_database_url(config: dict[str, str], url: str) -> None:
    assert database_url(config) == url


@pytest.mark.parametrize(
    ("driver", "read", "expected"),
    [
        ("psycopg", True, {"connect_timeout": 2}),
        ("psycopg2", False, {"connect_timeout": 2}),
        ("pg8000", True, {"timeout": 1.5}),
        ("pg8000", False, {}),
        ("pymysql", False, {"connect_timeout": 1.5}),
        (
            "pymysql",
            True,
            {"connect_timeout": 1.5, "read_timeout": 1.5, "write_timeout": 1.5},
        ),
        ("mysqldb", False, {"connect_timeout": 1}),
        ("pysqlite", True, {}),
    ],
)
def test_driver_timeouts(driver: str, read: bool, expected: dict[str, float]) -> None:
    dialect: Any = SimpleNamespace(driver=driver)
    assert _timeout_parameters(dialect, 1.5, read=read) == expected


# -- redis without a server -----------------------------------------------------


def test_redis_unset_says_what_to_set(app: Flask) -> None:
    HealthCheck(app, services=["redis"])
    result = run_one(app, "redis")
    assert result.error == (
        "RuntimeError: no Redis configured: set REDIS_URL,"
        " such as 'redis://localhost:6379/0'"
    )


def test_redis_not_installed_says_what_to_install(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    monkeypatch.setitem(sys.modules, "redis", None)
    HealthCheck(app, services=["redis"])
    result = run_one(app, "redis")
    assert result.error == (
        "RuntimeError: redis is not installed: install flask-healthchecks[redis]"
    )


def test_redis_on_a_closed_port_fails_at_once(app: Flask) -> None:
    app.config["REDIS_URL"] = "redis://:pw-in-url@127.0.0.1:1/0"
    HealthCheck(app, services=["redis"])
    result = run_one(app, "redis")
    assert result.status == "fail"
    assert result.error is not None
    assert result.error.startswith("ConnectionError:")
    assert "pw-in-url" not in result.error
    assert result.duration < 1
