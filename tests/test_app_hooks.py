"""Health URLs are answered before the app's own hooks (login redirects,
database sessions, URL value preprocessors), whichever order the app
registered them in; ``HEALTHCHECK_RUN_APP_HOOKS`` runs them and warns."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, abort, g, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from flask_healthcheck import ConfigurationError, HealthCheck, is_health_request
from flask_healthcheck.state import get_state

SUCCESS = b'{"status": "success", "error": "", "data": {}, "pagination": {}, '
FAILURE = b'{"status": "failure", "error": "", "data": [], "pagination": {}, '


def add_hostile_hooks(app: Flask, calls: list[str]) -> None:
    """Hooks written for pages: each would answer, or break, a probe."""

    @app.url_value_preprocessor
    def pull_tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
        calls.append("url_value_preprocessor")
        g.tenant = values.pop("tenant")  # type: ignore[union-attr]  # KeyError

    @app.before_request
    def require_login() -> BaseResponse:
        calls.append("before_request")
        return redirect("/login")

    pages = Blueprint("pages", __name__)

    @pages.before_app_request
    def open_session() -> None:
        calls.append("before_app_request")
        raise RuntimeError("the database is down")

    @pages.route("/page")
    def page() -> str:
        return "page"

    app.register_blueprint(pages)


@pytest.mark.parametrize("hooks_first", [True, False], ids=["before", "after"])
def test_probes_are_answered_before_the_apps_hooks(
    app: Flask, hooks_first: bool
) -> None:
    calls: list[str] = []
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    if hooks_first:
        add_hostile_hooks(app, calls)
    health = HealthCheck(app)
    if not hooks_first:
        add_hostile_hooks(app, calls)
    health.add_check(lambda: True, name="db", tags=["live"])
    client = app.test_client()
    for url in ("/health", "/livez", "/health/db", "/livez/db"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.data.startswith(SUCCESS)
        assert client.head(url).status_code == 200
    assert client.get("/health/history").status_code == 200
    assert client.get("/health/status.css").status_code == 200
    html = client.get("/health", headers={"Accept": "text/html"})
    assert html.status_code == 200 and b"Healthy" in html.data
    for url, status in [("/health/", 404), ("/health/nope", 404), ("/livez/", 404)]:
        response = client.get(url)
        assert response.status_code == status, url
        assert response.data.startswith(FAILURE)
    refused = client.post("/health")
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET, HEAD"
    assert calls == []
    # The app's own pages still go through all of them.
    with pytest.raises(KeyError):
        client.get("/page")
    assert calls == ["url_value_preprocessor"]


def test_a_failing_check_still_fails(app: Flask) -> None:
    add_hostile_hooks(app, [])
    app.config["HEALTHCHECK_FAILURE_STATUS"] = 503
    health = HealthCheck(app)
    health.add_check(lambda: False, name="db")
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.data.startswith(FAILURE)


def test_after_request_and_teardown_run_and_can_tell_probes(app: Flask) -> None:
    seen: list[tuple[str, bool]] = []

    @app.after_request
    def tag(response: Response) -> Response:
        seen.append(("after", is_health_request()))
        response.headers["X-App"] = "1"
        return response

    @app.teardown_request
    def close(error: BaseException | None) -> None:
        seen.append(("teardown", is_health_request()))

    @app.route("/page")
    def page() -> str:
        return "page"

    HealthCheck(app)
    client = app.test_client()
    assert client.get("/health").headers["X-App"] == "1"
    assert client.get("/health/nope").headers["X-App"] == "1"
    assert client.get("/page").headers["X-App"] == "1"
    assert client.get("/elsewhere").status_code == 404
    assert seen == [
        ("after", True),
        ("teardown", True),
        ("after", True),
        ("teardown", True),
        ("after", False),
        ("teardown", False),
        ("after", False),
        ("teardown", False),
    ]


def test_is_health_request_outside_a_request_or_the_extension() -> None:
    assert is_health_request() is False
    plain = Flask("plain")
    with plain.test_request_context("/health"):
        assert is_health_request() is False


def test_an_apps_own_route_under_the_health_url_is_the_apps(app: Flask) -> None:
    @app.route("/health/custom")
    def custom() -> str:
        return "mine" if not is_health_request() else "ours"

    HealthCheck(app)
    assert app.test_client().get("/health/custom").text == "mine"


def test_run_app_hooks_must_be_a_bool(app: Flask) -> None:
    app.config["HEALTHCHECK_RUN_APP_HOOKS"] = "yes"
    with pytest.raises(ConfigurationError, match="HEALTHCHECK_RUN_APP_HOOKS"):
        HealthCheck(app)


def warnings_about_hooks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "flask_healthcheck" and "before_request hook" in record.msg
    ]


def test_with_run_app_hooks_the_apps_hooks_answer_and_a_warning_says_so(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(
        HEALTHCHECK_RUN_APP_HOOKS=True, HEALTHCHECK_ENDPOINTS={"/livez": ["live"]}
    )
    health = HealthCheck(app)
    health.add_check(lambda: True, name="db")

    @app.before_request
    def require_login() -> BaseResponse | None:
        if request.headers.get("X-Limited"):
            abort(429)
        return redirect("/login")

    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        for _ in range(3):
            assert client.get("/health").status_code == 302
            assert client.get("/health/db").status_code == 302  # the same URL
        assert client.get("/livez").status_code == 302
        assert client.get("/health", headers={"X-Limited": "1"}).status_code == 429
        assert client.get("/health", headers={"X-Limited": "1"}).status_code == 429
    messages = warnings_about_hooks(caplog)
    assert len(messages) == 3
    assert "answered the health URL /health with 302" in messages[0]
    assert "kubelet counts a 302 as success" in messages[0]
    assert "HEALTHCHECK_RUN_APP_HOOKS" in messages[0]
    assert "is_health_request()" in messages[0]
    assert "/livez with 302" in messages[1]
    assert "raised TooManyRequests the health URL /health with 429" in messages[2]


def test_with_run_app_hooks_a_hook_that_skips_probes_is_quiet(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["HEALTHCHECK_RUN_APP_HOOKS"] = True
    calls: list[str] = []

    @app.before_request
    def require_login() -> BaseResponse | None:
        calls.append(request.path)
        if is_health_request():
            return None
        return redirect("/login")

    HealthCheck(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        assert client.get("/health").data.startswith(SUCCESS)
        assert client.get("/health/").status_code == 404  # still the extension's
        assert client.get("/page").status_code == 302
    assert calls == ["/health", "/health/", "/page"]
    assert warnings_about_hooks(caplog) == []


@pytest.mark.parametrize("run_app_hooks", [False, True])
def test_the_refresh_starts_even_when_a_hook_answers_every_request(
    run_app_hooks: bool, tmp_path: Path
) -> None:
    app = Flask("refreshed")  # not TESTING: a served app
    app.config.update(
        HEALTHCHECK_INTERVAL=60,
        HEALTHCHECK_RUN_DIR=str(tmp_path),
        HEALTHCHECK_RUN_APP_HOOKS=run_app_hooks,
    )
    app.before_request(lambda: redirect("/login"))
    health = HealthCheck(app)
    state = get_state(app)
    try:
        assert not state.refresher.running
        assert app.test_client().get("/page").status_code == 302
        assert state.refresher.running
    finally:
        health.stop(app)


def test_an_endpoint_added_after_init_app_is_answered_first_too(app: Flask) -> None:
    health = HealthCheck(app)
    app.before_request(lambda: redirect("/login"))
    health.add_endpoint("/startupz", tags=["startup"])
    client = app.test_client()
    assert client.get("/startupz").data.startswith(SUCCESS)
    assert client.get("/startupz/").data.startswith(FAILURE)
    assert client.delete("/startupz").status_code == 405
