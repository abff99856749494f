"""Every answer under the health URLs is the extension's own: refused
methods, a trailing slash and unknown sub-paths get the envelope (or the
negotiated format) with ``Cache-Control: no-store``, never Werkzeug's HTML."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flask_healthcheck import HealthCheck

from .helpers import strict_json

HEALTH_JSON = "application/health+json"


@pytest.fixture
def health(app: Flask) -> HealthCheck:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process", tags=["live"])
    return health


def request(
    app: Flask, method: str, url: str, accept: str | None = None
) -> TestResponse:
    headers = {} if accept is None else {"Accept": accept}
    return app.test_client().open(url, method=method, headers=headers)


def input_errors(response: TestResponse) -> dict[str, str]:
    body = json.loads(response.data)
    assert list(body) == ["status", "error", "data", "pagination", "input_errors"]
    assert (body["status"], body["data"]) == ("failure", [])
    errors: dict[str, str] = body["input_errors"]
    return errors


@pytest.mark.parametrize("url", ["/health", "/livez", "/health/process"])
@pytest.mark.parametrize(
    "method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND"]
)
def test_a_refused_method_is_a_405_in_the_envelope(
    app: Flask, health: HealthCheck, url: str, method: str
) -> None:
    """Issue 10.5: Werkzeug's HTML 405, without ``no-store``."""
    response = request(app, method, url)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    assert input_errors(response) == {
        "method": f"the method {method} is not allowed here; use GET or HEAD"
    }


def test_a_refused_method_answers_in_the_negotiated_format(
    app: Flask, health: HealthCheck
) -> None:
    response = request(app, "POST", "/health", HEALTH_JSON)
    assert (response.status_code, response.mimetype) == (405, HEALTH_JSON)
    assert json.loads(response.data)["status"] == "fail"
    page = request(app, "DELETE", "/health", "text/html")
    assert (page.status_code, page.mimetype) == (405, "text/html")
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", ["/health/", "/livez/"])
def test_a_trailing_slash_is_a_404_in_the_envelope(
    app: Flask, health: HealthCheck, url: str
) -> None:
    response = request(app, "GET", url)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Accept"
    assert input_errors(response) == {
        "check": f"no check name after {url!r}; the endpoint is {url[:-1]!r}"
    }


@pytest.mark.parametrize("url", ["/health/", "/health/nope", "/health/a/b"])
def test_a_head_stays_a_head(app: Flask, health: HealthCheck, url: str) -> None:
    response = request(app, "HEAD", url)
    assert (response.status_code, response.data) == (404, b"")
    assert response.headers["Cache-Control"] == "no-store"


def test_a_slash_merging_redirect_is_not_cached(
    app: Flask, health: HealthCheck
) -> None:
    response = request(app, "GET", "/health//process")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/health/process")
    assert response.headers["Cache-Control"] == "no-store"


def test_other_urls_keep_the_apps_own_errors(app: Flask, health: HealthCheck) -> None:
    @app.post("/orders")
    def orders() -> str:
        return "created"

    assert request(app, "GET", "/healthz").mimetype == "text/html"
    refused = request(app, "GET", "/orders")
    assert (refused.status_code, refused.mimetype) == (405, "text/html")
    assert "Cache-Control" not in refused.headers


def test_the_apps_own_route_under_the_health_url_wins(
    app: Flask, health: HealthCheck
) -> None:
    @app.post("/health")
    def receive_report() -> str:
        return "thanks"

    assert request(app, "POST", "/health").data == b"thanks"
    assert request(app, "GET", "/health").status_code == 200


# -- Accept --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        "application/xhtml+xml",
        "application/xhtml+xml, application/xml;q=0.9",
        "application/json;q=0.5, application/xhtml+xml",
    ],
)
def test_xhtml_is_html(app: Flask, health: HealthCheck, accept: str) -> None:
    """Issue 10.9: ``application/xhtml+xml`` alone got JSON."""
    response = request(app, "GET", "/health", accept)
    assert (response.status_code, response.mimetype) == (200, "text/html")
    assert response.data.lower().startswith(b"<!doctype html>")


# -- routing errors under the health URLs --------------------------------------


@pytest.mark.parametrize("method", ["BREW", "OPTIONS", "PROPFIND", "X" * 3000])
def test_any_refused_method_gets_the_envelope_405(
    client: FlaskClient, method: str
) -> None:
    response = client.open("/health", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Cache-Control"] == "no-store"
    assert strict_json(response.data)["status"] == "failure"


@pytest.mark.parametrize(
    "path", ["/health/..", "/health/../etc/passwd", "/health/%2e%2e", "/health/a/b"]
)
def test_traversal_under_the_health_url_is_an_envelope_404(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert strict_json(response.data)["status"] == "failure"


def test_a_10_kb_path_is_answered_small(client: FlaskClient) -> None:
    response = client.get("/health/" + "a" * 10_000)
    assert response.status_code == 404
    assert len(response.data) < 500


def test_merged_slashes_redirect_uncached_and_other_paths_are_the_apps(
    client: FlaskClient,
) -> None:
    response = client.get("/health//database")
    assert response.status_code == 308
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Location"].endswith("/health/database")
    response = client.get("/healthz-admin")
    assert response.status_code == 404
    assert "Cache-Control" not in response.headers  # the app's own 404


def test_head_of_an_unknown_check_is_a_bodiless_404(client: FlaskClient) -> None:
    response = client.head("/health/nope")
    assert response.status_code == 404 and response.data == b""
