"""docs/porting.md's porting sections: every flask-healthcheck example runs and
behaves as the section says."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flask_healthcheck import HealthCheck

from .helpers import FAILURE, SUCCESS

PAGE = Path(__file__).parent.parent / "docs" / "porting.md"


def example(name: str, marker: str = "porting-example", **names: Any) -> dict[str, Any]:
    """Run the fenced block after ``<!-- marker: name -->``; its globals,
    with ``names`` defined first (what the app would import)."""
    found = re.search(
        rf"<!-- {marker}: {re.escape(name)} -->\n```python\n(.*?)```",
        PAGE.read_text(),
        re.S,
    )
    assert found is not None, f"{PAGE.name} has no porting example {name!r}"
    namespace: dict[str, Any] = {"__name__": f"porting_{name.replace('-', '_')}"}
    namespace.update(names)
    exec(found.group(1), namespace)
    return namespace


def errors(namespace: dict[str, Any]) -> dict[str, str | None]:
    health: HealthCheck = namespace["health"]
    with namespace["app"].app_context():
        return {result.name: result.error for result in health.run().checks}


def test_clearskies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # sqlite:///app.db
    sqlite3.connect("app.db").close()  # the app's database, which it made
    namespace = example("clearskies")
    response = namespace["app"].test_client().get("/health")
    assert (response.status_code, response.data) == (200, SUCCESS)
    assert errors(namespace) == {"cursor_backend": None, "is_healthy": None}


@pytest.mark.parametrize("up", [True, False])
def test_py_healthcheck(up: bool) -> None:
    namespace = example("py-healthcheck", ping_database=lambda: up)
    response = namespace["app"].test_client().get("/healthcheck")
    assert (response.status_code, response.data) == (
        (200, SUCCESS) if up else (500, FAILURE)
    )
    expected = None if up else "database down"
    assert errors(namespace) == {"database_available": expected}


@pytest.mark.parametrize("up", [True, False])
def test_flask_healthz(up: bool) -> None:
    namespace = example("flask-healthz", ping_database=lambda: up)
    client = namespace["app"].test_client()
    assert client.get("/healthz/live").data == SUCCESS  # no check: passes
    ready = client.get("/healthz/ready")
    assert (ready.status_code, ready.data) == ((200, SUCCESS) if up else (500, FAILURE))
    expected = None if up else "ConnectionError: database down"
    assert errors(namespace) == {"database": expected}


@pytest.mark.parametrize(
    ("name", "module", "url", "status"),
    [
        ("py-healthcheck", "healthcheck", "/healthcheck", 500),
        ("flask-healthz", "flask_healthz", "/healthz/ready", 503),
    ],
)
def test_the_old_code_beside_it_runs_as_shown(
    name: str, module: str, url: str, status: int
) -> None:
    """The "before" blocks are real code of those libraries (the ``bench``
    extra installs them), failing as the new code does."""
    pytest.importorskip(module)
    namespace = example(name, "porting-before", ping_database=lambda: False)
    assert namespace["app"].test_client().get(url).status_code == status
