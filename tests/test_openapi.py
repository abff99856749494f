"""``<url>/openapi.json``: the document is valid OpenAPI 3.1 (checked by
``openapi-spec-validator``), and every response it documents is one a real
request gets, its body valid against the documented JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from flask_healthcheck import CheckResult, ConfigurationError, HealthCheck
from flask_healthcheck.formats import FORMATS

from .helpers import SignalFlushingClient

#: The warn status of the walked app: not 200, so it is documented apart.
WARN_STATUS = 218
METHODS = ("get", "head")


@dataclass
class Walk:
    """An app with every kind of URL, whose checks pass, warn or fail as
    the test says."""

    app: Flask
    health: HealthCheck
    outcome: dict[str, str] = field(default_factory=lambda: {"db": "pass"})

    def document(self) -> dict[str, Any]:
        response = self.app.test_client().get("/health/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json  # type: ignore[assignment]
        return document


def make_walk(**config: Any) -> Walk:
    app = Flask(__name__)
    app.config.update(
        {
            "TESTING": True,
            "HEALTHCHECK_ENDPOINTS": {"/livez": ["live"]},
            "HEALTHCHECK_SHOW_DETAILS": True,
            "HEALTHCHECK_WARN_STATUS": WARN_STATUS,
            **config,
        }
    )
    app.test_client_class = SignalFlushingClient
    health = HealthCheck(app)
    walk = Walk(app, health)

    def db() -> CheckResult | bool:
        outcome = walk.outcome["db"]
        if outcome == "warn":
            return CheckResult(name="db", status="warn", error="slow")
        return outcome == "pass"

    health.add_check(db, tags=["live"])
    health.add_check(lambda: True, name="cache")
    return walk


@pytest.fixture
def walk() -> Iterator[Walk]:
    walk = make_walk()
    yield walk
    walk.app.extensions["healthcheck"].refresher.stop(timeout=5)


def response_object(document: dict[str, Any], item: dict[str, Any]) -> Any:
    """A response, its ``$ref`` followed."""
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = document["components"][kind][name]
    return item


def documented(document: dict[str, Any]) -> list[tuple[str, str, int, str | None]]:
    """Every (path, method, status, media type) the document lists; HEAD's
    with no media type (it has no body)."""
    combos: list[tuple[str, str, int, str | None]] = []
    for path, item in document["paths"].items():
        for method in METHODS:
            for code, response in item[method]["responses"].items():
                content = response_object(document, response).get("content", {})
                assert bool(content) == (method == "get" and code != "304")
                # Any other method gets the 405 GET's responses list.
                assert method == "get" or code != "405"
                for media in content or [None]:
                    combos.append((path, method, int(code), media))
    return combos


# -- how to get each documented answer ------------------------------------------


def request_for(
    walk: Walk, path: str, method: str, code: int
) -> tuple[str, str, dict[str, str]]:
    """The URL, method and headers that answer ``code`` on ``path``; sets
    the checks' outcome. A documented answer with no way here fails."""
    headers: dict[str, str] = {}
    if code == 405:
        return path.replace("{check}", "db"), "POST", headers
    if path.endswith("/{check}") or path in ("/health", "/livez"):
        url = path.replace("{check}", "db")
        if code == 404:
            return path.replace("{check}", "nope"), method, headers
        if code == 400:
            return f"{url}?exclude=nope", method, headers
        if code == 406:
            return f"{url}?format=nope", method, headers
        walk.outcome["db"] = {200: "pass", WARN_STATUS: "warn", 500: "fail"}[code]
        return url, method, headers
    if path == "/health/history":
        query = {200: "?check=db&limit=3", 400: "?limit=9999"}[code]
        return path + query, method, headers
    if path == "/health/openapi.json" and code == 200:
        return path, method, headers
    if path in ("/health/status.css", "/health/status.svg"):
        if code == 304:
            etag = walk.app.test_client().get(path).headers["ETag"]
            headers["If-None-Match"] = etag
        return path, method, headers
    raise AssertionError(f"no request here answers {code} on {method} {path}")


def schema_validator(
    document: dict[str, Any], path: str, code: int, media: str
) -> Draft202012Validator:
    """A validator of the documented schema, resolving its ``$ref`` in the
    document as jsonschema does, with the ``referencing`` library."""
    uri = "urn:openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    response = document["paths"][path]["get"]["responses"][str(code)]
    pointer = response["$ref"].removeprefix("#")
    escaped = media.replace("~", "~0").replace("/", "~1")
    schema = {"$ref": f"{uri}#{pointer}/content/{escaped}/schema"}
    return Draft202012Validator(schema, registry=registry)


def _params() -> list[Any]:
    walk = make_walk()
    try:
        combos = documented(walk.document())
    finally:
        walk.app.extensions["healthcheck"].refresher.stop(timeout=5)
    params = []
    for path, method, code, media in combos:
        name = f"{method.upper()} {path} {code} {media or ''}".strip()
        params.append(pytest.param(path, method, code, media, id=name))
    return params


@pytest.mark.parametrize(("path", "method", "code", "media"), _params())
def test_every_documented_answer_is_real(
    walk: Walk, path: str, method: str, code: int, media: str | None
) -> None:
    document = walk.document()
    url, verb, headers = request_for(walk, path, method, code)
    if media is not None:
        headers["Accept"] = media
    response = walk.app.test_client().open(url, method=verb.upper(), headers=headers)
    assert response.status_code == code, response.data[:300]
    if code == 304:
        return
    if code == 405:
        assert response.headers["Allow"] == "GET, HEAD"
    if path.startswith("/health/status.") and code < 400:
        assert response.headers["Cache-Control"].startswith("public")
    else:
        assert response.headers["Cache-Control"] == "no-store"
    if media is None:  # HEAD
        assert response.data == b""
        return
    assert response.mimetype == media
    if media.endswith("json"):
        body = json.loads(response.data)
        schema_validator(document, path, code, media).validate(body)
    else:
        assert response.text


# -- the document ------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(walk: Walk) -> None:
    document = walk.document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/health",
        "/health/{check}",
        "/livez",
        "/livez/{check}",
        "/health/history",
        "/health/openapi.json",
        "/health/status.css",
        "/health/status.svg",
    }
    assert document["servers"] == [{"url": "/"}]


def test_it_documents_the_formats_on_offer(walk: Walk) -> None:
    document = walk.document()
    params = {p["name"]: p for p in document["paths"]["/health"]["parameters"]}
    assert params["format"]["schema"]["enum"] == [f.name for f in FORMATS.values()]
    assert params["exclude"]["schema"]["type"] == "array"
    ok = document["components"]["responses"]["Report200"]
    assert list(ok["content"]) == list(FORMATS)
    assert ok["content"]["text/html"]["schema"] == {"type": "string"}
    assert "Cache-Control" in ok["headers"]


def test_the_statuses_are_the_configured_ones() -> None:
    walk = make_walk(HEALTHCHECK_FAILURE_STATUS=503)
    document = walk.document()
    codes = set(document["paths"]["/livez"]["get"]["responses"])
    assert codes == {"200", "400", "405", "406", "503", str(WARN_STATUS)}
    walk.outcome["db"] = "fail"
    assert walk.app.test_client().get("/livez").status_code == 503


def test_a_failure_status_that_is_also_a_refusal_is_documented_once() -> None:
    walk = make_walk(HEALTHCHECK_FAILURE_STATUS=400)
    document = walk.document()
    validate(document)
    walker = schema_validator(document, "/health", 400, "application/json")
    walk.outcome["db"] = "fail"
    walker.validate(walk.app.test_client().get("/health").json)
    walker.validate(walk.app.test_client().get("/health?exclude=x").json)


def test_real_answers_are_documented(walk: Walk) -> None:
    """A walk of URLs, each answer's status among its path's documented ones."""
    document = walk.document()
    templates = [
        (re.compile("^" + re.escape(p).replace(r"\{check\}", "[^/]+") + "$"), p)
        for p in document["paths"]
    ]
    client = walk.app.test_client()
    urls = [
        "/health",
        "/health?exclude=cache",
        "/health?exclude=",
        "/livez",
        "/livez/db",
        "/livez/cache",
        "/health/db?exclude=db",
        "/health/nope",
        "/health/history",
        "/health/history?limit=abc",
        "/health/history?check=nope",
        "/health/openapi.json",
        "/health/status.svg?status=fail",
    ]
    for outcome in ("pass", "warn", "fail"):
        walk.outcome["db"] = outcome
        for url in urls:
            path = url.split("?")[0]
            template = next(t for pattern, t in templates if pattern.match(path))
            for method in ("GET", "HEAD", "POST", "DELETE"):
                status = client.open(url, method=method).status_code
                listed = document["paths"][template][
                    method.lower() if method in ("GET", "HEAD") else "get"
                ]["responses"]
                assert str(status) in listed, (method, url, status)


def test_openapi_json_is_json_whatever_the_accept(walk: Walk) -> None:
    client = walk.app.test_client()
    for accept in ("text/html", "application/health+json", "text/plain"):
        response = client.get("/health/openapi.json", headers={"Accept": accept})
        assert (response.status_code, response.mimetype) == (200, "application/json")
        assert response.headers["Cache-Control"] == "no-store"
    head = client.head("/health/openapi.json")
    assert (head.status_code, head.data) == (200, b"")
    # Only under the main URL: under /livez it is an unknown check.
    assert client.get("/livez/openapi.json").status_code == 404


def test_format_names_the_document(walk: Walk) -> None:
    assert walk.app.test_client().get("/health/openapi.json?format=html").is_json


def test_servers_is_the_script_root(walk: Walk) -> None:
    client = walk.app.test_client()
    response = client.get("/health/openapi.json", base_url="http://localhost/svc/")
    assert response.json["servers"] == [{"url": "/svc"}]  # type: ignore[index]
    assert walk.document()["servers"] == [{"url": "/"}]


def test_the_main_url_may_be_the_root() -> None:
    walk = make_walk(HEALTHCHECK_URL="/")
    response = walk.app.test_client().get("/openapi.json")
    document = response.json
    assert isinstance(document, dict)
    validate(document)
    assert {"/", "/{check}", "/history", "/openapi.json"} <= set(document["paths"])


# -- what it says about the app ---------------------------------------------------


def test_an_endpoint_added_after_init_app_appears(walk: Walk) -> None:
    walk.health.add_endpoint("/readyz", tags=["ready"])
    walk.health.add_check(lambda: True, name="queue", tags=["ready"])
    document = walk.document()
    validate(document)
    assert {"/readyz", "/readyz/{check}"} <= set(document["paths"])
    assert check_enum(document, "/readyz/{check}") == ["queue"]
    assert walk.app.test_client().get("/readyz/queue").status_code == 200


def test_a_check_added_after_a_request_appears(walk: Walk) -> None:
    """The cached document is never stale."""
    assert "late_check" not in json.dumps(walk.document())
    walk.health.add_check(lambda: True, name="late_check", tags=["live"])
    assert check_enum(walk.document(), "/livez/{check}") == ["db", "late_check"]


def test_a_check_added_for_every_app_appears() -> None:
    """``add_check`` on the extension (every app) bumps the shared
    registry: each app's cached document is dropped too."""
    health = HealthCheck()
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config.update(TESTING=True, HEALTHCHECK_SHOW_DETAILS=True)
        health.init_app(app)
    for app in (first, second):
        assert "shared_check" not in app.test_client().get("/health/openapi.json").text
    health.add_check(lambda: True, name="shared_check")
    for app in (first, second):
        assert "shared_check" in app.test_client().get("/health/openapi.json").text


def check_enum(document: dict[str, Any], path: str) -> list[str]:
    """The names ``{check}`` of ``path`` accepts, its ``$ref`` followed."""
    schema = document["paths"][path]["parameters"][0]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
    names: list[str] = schema["enum"]
    return names


def test_with_details_the_check_names_are_listed(walk: Walk) -> None:
    document = walk.document()
    assert check_enum(document, "/health/{check}") == ["db", "cache"]
    assert check_enum(document, "/livez/{check}") == ["db"]
    exclude = document["paths"]["/livez"]["parameters"][0]
    assert exclude["schema"]["items"] == {"$ref": "#/components/schemas/CheckName"}


def test_without_details_no_check_name_appears() -> None:
    walk = make_walk(HEALTHCHECK_SHOW_DETAILS=False)
    walk.health.add_check(lambda: True, name="zebra_ledger_primary")
    text = walk.app.test_client().get("/health/openapi.json").text
    validate(json.loads(text))
    assert "zebra_ledger_primary" not in text
    assert '"enum": ["db"' not in text


def test_details_by_request_are_decided_per_request() -> None:
    def allowed(request: Any) -> bool:
        return bool(request.headers.get("X-Admin") == "yes")

    walk = make_walk(HEALTHCHECK_SHOW_DETAILS=allowed)
    walk.health.add_check(lambda: True, name="zebra_ledger_primary")
    client = walk.app.test_client()
    for _ in range(2):  # the second time from the cache
        admin = client.get("/health/openapi.json", headers={"X-Admin": "yes"})
        assert "zebra_ledger_primary" in admin.text
        assert "zebra_ledger_primary" not in client.get("/health/openapi.json").text


def test_no_secret_reaches_the_document() -> None:
    walk = make_walk(
        HEALTHCHECK_SERVICE_ID="orders password=swordfish1",
        HEALTHCHECK_VERSION="1.2 token=tok3nvalue99",
        HEALTHCHECK_DESCRIPTION="Orders, postgres://orders:hunter2pw@db:5432/orders"
        " signed with Kq93vXe7LmZ2",
        SECRET_KEY="Kq93vXe7LmZ2",
    )
    document = walk.document()
    text = json.dumps(document)
    for secret in ("swordfish1", "tok3nvalue99", "hunter2pw", "Kq93vXe7LmZ2"):
        assert secret not in text
    assert document["info"]["title"].startswith("orders")
    assert document["info"]["version"].startswith("1.2")
    assert "postgres://orders:" in document["info"]["description"]


def test_sensible_defaults_without_a_service_id(walk: Walk) -> None:
    info = walk.document()["info"]
    assert info["title"] == "Health checks"
    assert info["version"]


# -- the reserved name -------------------------------------------------------------


def test_a_check_named_openapi_json_is_refused(app: Flask) -> None:
    health = HealthCheck(app)
    with pytest.raises(ConfigurationError, match="can't be named 'openapi.json'") as e:
        health.add_check(lambda: True, name="openapi.json")
    message = str(e.value)
    for name in ("'history'", "'openapi.json'", "'status.css'", "'status.svg'"):
        assert name in message
    with pytest.raises(ConfigurationError, match="reserved names"):
        HealthCheck().add_check(lambda: True, name="openapi.json")


def test_the_history_message_names_the_reserved_names(app: Flask) -> None:
    with pytest.raises(ConfigurationError, match="'openapi.json'"):
        HealthCheck(app).add_check(lambda: True, name="history")


def test_a_configuration_error_still_gets_a_document() -> None:
    """Names can't be listed (the checks don't validate); the URLs can."""
    walk = make_walk()

    def needs(missing_service: object) -> bool:
        return True

    walk.health.add_check(needs)
    assert walk.app.test_client().get("/health").status_code == 500
    document = walk.document()
    validate(document)
    assert "enum" not in document["components"]["schemas"]["CheckName"]
    assert "/livez/{check}" in document["paths"]


def test_a_thousand_checks_give_a_bounded_document() -> None:
    walk = make_walk()
    for number in range(1000):
        tags = ["live"] if number % 2 else []
        walk.health.add_check(lambda: True, name=f"check_number_{number}", tags=tags)
    text = walk.app.test_client().get("/health/openapi.json").text
    validate(json.loads(text))
    # Each name once for the app, once more per endpoint that runs it.
    assert text.count('"check_number_999"') == 2
    assert len(text) < 100_000
