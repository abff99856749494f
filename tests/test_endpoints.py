"""Endpoints by tag, one check per URL, ``?exclude=``, and URL clashes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from flask_healthcheck import ConfigurationError, HealthCheck

from .helpers import FAILURE, SUCCESS

PROBES = {"/livez": ["live"], "/readyz": ["ready"]}


@pytest.fixture
def states() -> dict[str, bool]:
    """Whether each check passes; tests flip them."""
    return {"process": True, "database": True, "search": True}


@pytest.fixture
def probes(app: Flask, states: dict[str, bool]) -> HealthCheck:
    """An app with ``/livez`` and ``/readyz`` and three tagged checks."""
    app.config.update(HEALTHCHECK_ENDPOINTS=PROBES, HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)

    @health.check(tags=["live", "ready"])
    def process() -> bool:
        return states["process"]

    @health.check(tags=["ready"])
    def database() -> bool:
        return states["database"]

    @health.check(tags=["ready"], critical=False)
    def search() -> bool:
        return states["search"]

    return health


def checks_of(response: Any) -> list[str]:
    return list(response.json["data"]["checks"])


def test_each_endpoint_runs_the_checks_with_its_tags(
    app: Flask, probes: HealthCheck
) -> None:
    client = app.test_client()
    assert checks_of(client.get("/health")) == ["process", "database", "search"]
    assert checks_of(client.get("/livez")) == ["process"]
    assert checks_of(client.get("/readyz")) == ["process", "database", "search"]


def test_an_endpoint_fails_only_for_its_own_checks(
    app: Flask, probes: HealthCheck, states: dict[str, bool]
) -> None:
    states["database"] = False
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 500
    assert client.get("/health").status_code == 500


def test_endpoints_without_details_answer_the_envelope_bytes(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = PROBES
    health = HealthCheck(app)
    health.add_check(lambda: True, name="up", tags=["live"])
    health.add_check(lambda: False, name="down", tags=["ready"])
    client = app.test_client()
    assert (client.get("/livez").status_code, client.get("/livez").data) == (
        200,
        SUCCESS,
    )
    assert client.get("/readyz").data == FAILURE


def test_an_endpoint_whose_tags_match_nothing_passes(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/livez": ["live"]}
    HealthCheck(app, callable=lambda: False)
    assert app.test_client().get("/livez").data == SUCCESS


def test_add_endpoint_before_init_app() -> None:
    health = HealthCheck()
    health.add_endpoint("/startupz", tags=["startup"])
    health.add_check(lambda: True, name="warmed_up", tags=["startup"])
    health.add_check(lambda: False, name="other")
    for name in ("one", "two"):  # one extension object, many apps
        app = Flask(name)
        health.init_app(app)
        response = app.test_client().get("/startupz")
        assert (response.status_code, response.data) == (200, SUCCESS)


def test_add_endpoint_after_init_app(app: Flask, probes: HealthCheck) -> None:
    probes.add_endpoint("/startupz", tags=["live"])
    client = app.test_client()
    assert checks_of(client.get("/startupz")) == ["process"]
    assert checks_of(client.get("/startupz/process")) == ["process"]
    with app.test_request_context():
        assert url_for("healthcheck.endpoint_startupz") == "/startupz"


def test_add_endpoint_for_one_app_only(probes: HealthCheck, app: Flask) -> None:
    other = Flask("other")
    probes.init_app(other)
    probes.add_endpoint("/mine", tags=["live"], app=app)
    assert app.test_client().get("/mine").status_code == 200
    assert other.test_client().get("/mine").status_code == 404


def test_endpoint_names_for_url_for(app: Flask, probes: HealthCheck) -> None:
    with app.test_request_context():
        assert url_for("healthcheck.health") == "/health"
        assert url_for("healthcheck.health_check", check="database") == (
            "/health/database"
        )
        assert url_for("healthcheck.endpoint_readyz") == "/readyz"
        assert url_for("healthcheck.endpoint_readyz_check", check="x y") == (
            "/readyz/x%20y"
        )


@pytest.fixture
def database_down(
    app: Flask, probes: HealthCheck, states: dict[str, bool]
) -> FlaskClient:
    """A client of the probed app, whose ``database`` check fails."""
    states["database"] = False
    return app.test_client()


# -- one check ----------------------------------------------------------------


def test_one_check_under_every_endpoint(database_down: FlaskClient) -> None:
    client = database_down
    response = client.get("/health/database")
    assert response.status_code == 500
    assert checks_of(response) == ["database"]
    assert client.get("/health/process").status_code == 200
    assert checks_of(client.get("/livez/process")) == ["process"]
    assert checks_of(client.get("/readyz/search")) == ["search"]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/health/nope", "'nope'"),
        ("/livez/database", "'database'"),  # exists, but not a live check
        ("/health/a/b", "'a/b'"),
        ("/health/%3Cscript%3E", "'<script>'"),
    ],
)
def test_unknown_check_is_a_404_in_the_envelope(
    app: Flask, probes: HealthCheck, url: str, name: str
) -> None:
    response = app.test_client().get(url)
    assert response.status_code == 404
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        "status": "failure",
        "error": "",
        "data": [],
        "pagination": {},
        "input_errors": {"check": f"unknown check {name}"},
    }


def test_a_very_long_check_name_is_cut_in_the_answer(
    app: Flask, probes: HealthCheck
) -> None:
    response = app.test_client().get("/health/" + "x" * 10_000)
    assert response.status_code == 404
    assert len(response.data) < 300


# -- exclude --------------------------------------------------------------------


def test_exclude_leaves_checks_out(database_down: FlaskClient) -> None:
    client = database_down
    response = client.get("/readyz?exclude=database")
    assert (response.status_code, checks_of(response)) == (200, ["process", "search"])
    response = client.get("/health?exclude=database&exclude=search")
    assert checks_of(response) == ["process"]


def test_exclude_may_name_any_check_of_the_app(app: Flask, probes: HealthCheck) -> None:
    # One exclude list can serve every probe of a Deployment.
    response = app.test_client().get("/livez?exclude=database")
    assert (response.status_code, checks_of(response)) == (200, ["process"])


def test_empty_and_repeated_exclude_values_are_ignored(
    app: Flask, probes: HealthCheck
) -> None:
    client = app.test_client()
    response = client.get("/health?exclude=&exclude=search&exclude=search&exclude")
    assert (response.status_code, checks_of(response)) == (
        200,
        ["process", "database"],
    )


def test_unknown_exclude_is_a_400_naming_it(app: Flask, probes: HealthCheck) -> None:
    response = app.test_client().get("/health?exclude=databse&exclude=search")
    assert response.status_code == 400
    assert response.json["input_errors"] == {  # type: ignore[index]
        "exclude": "unknown check 'databse'"
    }
    assert response.json["status"] == "failure"  # type: ignore[index]


def test_many_unknown_excludes_are_summed_up(app: Flask, probes: HealthCheck) -> None:
    query = "&".join(f"exclude=n{i}" for i in range(8))
    response = app.test_client().get(f"/health?{query}")
    assert response.status_code == 400
    assert response.json["input_errors"] == {  # type: ignore[index]
        "exclude": "unknown checks 'n0', 'n1', 'n2', 'n3', 'n4' and 3 more"
    }


@pytest.mark.parametrize(
    "query",
    [
        "exclude=" + "x" * 10_000,
        "&".join(["exclude=process"] * 1_000),
        "&".join(f"exclude=n{i}" for i in range(1_500)),
        "x=" + "%" * 5_000,
        "exclude=%ZZ&exclude=%00",
    ],
)
def test_huge_or_odd_query_strings_answer_4xx_or_cleanly(
    app: Flask, probes: HealthCheck, query: str
) -> None:
    response = app.test_client().get(f"/health?{query}")
    assert response.status_code in (200, 400, 414)
    assert len(response.data) < 1_000 or response.status_code == 200


def test_other_query_parameters_are_ignored(app: Flask, probes: HealthCheck) -> None:
    # ``?format=`` is no longer one of them: see tests/test_format_registry.py.
    assert app.test_client().get("/health?verbose=1&output=xml").status_code == 200


# -- methods and headers --------------------------------------------------------


@pytest.mark.parametrize("url", ["/livez", "/readyz/database", "/health/process"])
def test_only_get_and_head_on_every_route(
    app: Flask, probes: HealthCheck, url: str
) -> None:
    client = app.test_client()
    assert client.get(url).status_code == 200
    head = client.head(url)
    assert (head.status_code, head.data) == (200, b"")
    for method in ("post", "put", "delete", "options"):
        assert getattr(client, method)(url).status_code == 405


@pytest.mark.parametrize(
    "url", ["/health", "/livez", "/health/process", "/health/nope", "/health?exclude=x"]
)
def test_every_answer_is_uncacheable_and_varies_by_accept(
    app: Flask, probes: HealthCheck, url: str
) -> None:
    response = app.test_client().get(url)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Accept"


# -- clashes ----------------------------------------------------------------------


def test_an_endpoint_on_the_main_url_is_a_configuration_error(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/health": ["live"]}
    with pytest.raises(ConfigurationError) as info:
        HealthCheck(app)
    assert str(info.value) == (
        "The endpoint '/health' (HEALTHCHECK_ENDPOINTS) has the same URL as the"
        " endpoint '/health' (HEALTHCHECK_URL); give each endpoint its own URL."
    )


def test_two_endpoints_on_one_url_are_a_configuration_error(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = PROBES
    health = HealthCheck(app)
    with pytest.raises(ConfigurationError, match="'/livez' .add_endpoint.*. has the"):
        health.add_endpoint("/livez", tags=["other"])
    with pytest.raises(ConfigurationError, match="same URL"):
        health.add_endpoint("/health", tags=["other"])
    health.add_endpoint("/startupz", tags=["startup"])
    with pytest.raises(ConfigurationError, match="same URL"):
        health.add_endpoint("/startupz", tags=["startup"])
    assert app.test_client().get("/startupz").status_code == 200


def test_an_extension_endpoint_clashing_with_an_apps_config(app: Flask) -> None:
    health = HealthCheck()
    health.add_endpoint("/livez", tags=["live"])
    app.config["HEALTHCHECK_ENDPOINTS"] = PROBES
    with pytest.raises(ConfigurationError, match="same URL"):
        health.init_app(app)
    assert "healthcheck" not in app.extensions


NESTED = {"/health/live": ["live"]}
CLASH = (
    "The check 'live' clashes with the endpoint '/health/live'"
    " (HEALTHCHECK_ENDPOINTS): '/health/live' is also the URL of that check"
    " under the endpoint '/health' (HEALTHCHECK_URL)."
)


def test_a_check_named_like_an_endpoint_sub_path_fails_at_registration(
    app: Flask,
) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = NESTED
    health = HealthCheck(app)
    with pytest.raises(ConfigurationError) as info:
        health.add_check(lambda: True, name="live")
    assert str(info.value).startswith(CLASH)
    assert app.test_client().get("/health").status_code == 200


def test_a_check_registered_before_init_app_clashes_at_init_app(app: Flask) -> None:
    health = HealthCheck()
    health.add_check(lambda: True, name="live")
    app.config["HEALTHCHECK_ENDPOINTS"] = NESTED
    with pytest.raises(ConfigurationError, match="The check 'live' clashes"):
        health.init_app(app)


def test_an_endpoint_added_on_a_check_name_clashes_at_once(app: Flask) -> None:
    health = HealthCheck(app, services=["memory_backend"])
    with pytest.raises(ConfigurationError, match="check 'memory_backend' clashes"):
        health.add_endpoint("/health/memory_backend", tags=["x"])
    assert app.test_client().get("/health/memory_backend").status_code == 200


def test_a_clash_with_the_callable_option_fails_at_init_app(app: Flask) -> None:
    """The ``callable`` option is a check from ``init_app`` on (issue 10), so its
    clash shows there, not as a 500 at the first request."""

    def live() -> bool:
        return True

    app.config["HEALTHCHECK_ENDPOINTS"] = NESTED
    with pytest.raises(ConfigurationError) as info:
        HealthCheck(app, callable=live)
    assert str(info.value).startswith(CLASH)


def test_a_nested_endpoint_without_a_clash_works(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/health/live": ["live"]}
    health = HealthCheck(app)
    health.add_check(lambda: True, name="process", tags=["live"])
    health.add_check(lambda: False, name="database")
    client = app.test_client()
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/live/process").status_code == 200
    assert client.get("/health/database").status_code == 500
    assert client.get("/health").status_code == 500


def test_a_root_main_url(app: Flask) -> None:
    app.config["HEALTHCHECK_URL"] = "/"
    health = HealthCheck(app)
    health.add_check(lambda: True, name="up")
    client: FlaskClient = app.test_client()
    assert client.get("/").data == SUCCESS
    assert client.get("/up").data == SUCCESS
    assert client.get("/nope").status_code == 404


def test_url_like_names_stay_apart(app: Flask) -> None:
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/a-b": ["x"], "/a_b": ["y"]}
    health = HealthCheck(app)
    health.add_check(lambda: True, name="x", tags=["x"])
    health.add_check(lambda: False, name="y", tags=["y"])
    client = app.test_client()
    assert client.get("/a-b").status_code == 200
    assert client.get("/a_b").status_code == 500
    with app.test_request_context():
        assert url_for("healthcheck.endpoint_a_b") == "/a-b"
        assert url_for("healthcheck.endpoint_a_b_2") == "/a_b"
