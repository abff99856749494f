"""The extension inside apps that use the usual extensions: Flask-Login,
Flask-Limiter, Flask-Talisman, Flask-WTF's CSRF protection, Flask-CORS and
Flask-SQLAlchemy, each the real package set up as its docs say, before and
after ``init_app``. Every probe gets the extension's own answer and status:
a failing check still fails, never a 302 or a 429 that a kubelet would
read as success."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, redirect, request, url_for
from flask.testing import FlaskClient
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

from flask_healthcheck import HealthCheck

SUCCESS = b'{"status": "success", "error": "", "data": {}, "pagination": {}, '
FAILURE = b'{"status": "failure", "error": "", "data": [], "pagination": {}, '
ORDERS = pytest.mark.parametrize(
    "extension_first", [True, False], ids=["extension-before", "extension-after"]
)


class User(UserMixin):  # type: ignore[misc]  # flask_login is untyped
    def __init__(self, user_id: str) -> None:
        self.id = user_id


@dataclass
class Probed:
    """An app with the extension, one healthy and one failing endpoint."""

    app: Flask
    health: HealthCheck


def make_app(
    setup: Callable[[Flask], None], *, extension_first: bool, **config: object
) -> Probed:
    """``setup`` adds another extension, before or after ``init_app``.
    ``/livez`` passes; ``/readyz`` (and so ``/health``) fails with 503."""
    app = Flask(__name__)
    app.config.update(
        # Registered as a secret to redact: a word no other test logs.
        SECRET_KEY="extensions-secret-9f2c41",
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
        HEALTHCHECK_FAILURE_STATUS=503,
        **config,
    )

    @app.route("/")
    def index() -> str:
        return "the app"

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str:
        return "log in"

    health = HealthCheck()
    if extension_first:
        setup(app)
    health.init_app(app)
    if not extension_first:
        setup(app)
    health.add_check(lambda: True, name="process", tags=["live"])
    health.add_check(lambda: False, name="database", tags=["ready"])
    return Probed(app, health)


def with_extension(
    extension: Callable[[Flask], object], extension_first: bool
) -> tuple[Flask, FlaskClient]:
    """The probed app with ``extension(app)`` added, before or after
    ``init_app``, and a client of it."""

    def setup(app: Flask) -> None:
        extension(app)

    app = make_app(setup, extension_first=extension_first).app
    return app, app.test_client()


def assert_probes_answered(app: Flask, **headers: str) -> None:
    client = app.test_client()
    for _ in range(2):
        live = client.get("/livez", headers=headers)
        assert live.status_code == 200
        assert live.data.startswith(SUCCESS)
        assert client.head("/livez", headers=headers).status_code == 200
        for url in ("/readyz", "/health", "/health/database", "/readyz/database"):
            response = client.get(url, headers=headers)
            assert response.status_code == 503, url
            assert response.data.startswith(FAILURE), url
        assert client.get("/health/history", headers=headers).status_code == 200
        page = client.get("/health", headers={**headers, "Accept": "text/html"})
        assert page.status_code == 503
        assert b"Unhealthy" in page.data


# -- Flask-Login ------------------------------------------------------------------


def login_everywhere(app: Flask, *, login_view: str | None) -> LoginManager:
    """Flask-Login with an app-wide hook that sends anonymous users to log
    in, as apps that protect every page do."""
    login_manager = LoginManager()
    login_manager.login_view = login_view
    login_manager.init_app(app)

    def load_user(user_id: str) -> User:
        return User(user_id)

    login_manager.user_loader(load_user)

    @app.before_request
    def require_login() -> BaseResponse | None:
        public = ("login", "visits.session_login")
        if request.endpoint in public or current_user.is_authenticated:
            return None
        answer: BaseResponse = login_manager.unauthorized()
        return answer

    return login_manager


@ORDERS
@pytest.mark.parametrize(("login_view", "page_status"), [("login", 302), (None, 401)])
def test_flask_login_redirects_pages_not_probes(
    extension_first: bool, login_view: str | None, page_status: int
) -> None:
    probed = make_app(
        lambda app: None if login_everywhere(app, login_view=login_view) else None,
        extension_first=extension_first,
    )
    client = probed.app.test_client()
    assert client.get("/").status_code == page_status
    assert_probes_answered(probed.app)


# -- Flask-Limiter ----------------------------------------------------------------


@ORDERS
def test_flask_limiter_default_limits_never_answer_a_probe(
    extension_first: bool,
) -> None:
    limiters: list[Limiter] = []

    def limit(app: Flask) -> None:
        limiters.append(
            Limiter(
                get_remote_address,
                app=app,
                default_limits=["5 per minute"],
                storage_uri="memory://",
            )
        )

    probed = make_app(limit, extension_first=extension_first)
    client = probed.app.test_client()
    for _ in range(20):
        assert client.get("/livez").status_code == 200
        assert client.get("/readyz").status_code == 503
    statuses = [client.get("/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # the limit holds for pages
    assert_probes_answered(probed.app)


# -- Flask-Talisman ---------------------------------------------------------------


@ORDERS
def test_flask_talisman_force_https_leaves_plain_http_probes_alone(
    extension_first: bool,
) -> None:
    app, client = with_extension(Talisman, extension_first)
    page = client.get("/")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("https://")
    assert_probes_answered(app)
    # Talisman's headers still apply: its CSP replaces the page's own, and
    # the page's stylesheet is of the same origin, which that CSP allows.
    html = client.get("/health", headers={"Accept": "text/html"})
    policy = html.headers["Content-Security-Policy"]
    assert policy.startswith("default-src 'self'")
    assert "style-src" not in policy  # default-src 'self' governs the stylesheet
    assert 'href="/health/status.css?v=' in html.text
    assert "<style" not in html.text and "style=" not in html.text
    assert client.get("/health/status.css").status_code == 200


# -- Flask-WTF --------------------------------------------------------------------


@ORDERS
def test_csrf_protect_leaves_probes_and_the_405_to_the_extension(
    extension_first: bool,
) -> None:
    app, client = with_extension(CSRFProtect, extension_first)
    assert client.post("/login").status_code == 400  # CSRF guards the app
    refused = client.post("/health")
    assert refused.status_code == 405
    assert refused.data.startswith(FAILURE)
    assert b"use GET or HEAD" in refused.data
    assert refused.headers["Allow"] == "GET, HEAD"
    assert_probes_answered(app)


# -- Flask-CORS -------------------------------------------------------------------


@ORDERS
def test_flask_cors_headers_reach_the_health_urls(extension_first: bool) -> None:
    app, client = with_extension(CORS, extension_first)
    origin = {"Origin": "https://dashboard.example"}
    response = client.get("/livez", headers=origin)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin["Origin"]
    assert_probes_answered(app, **origin)


# -- an app's own hook, with the database down ------------------------------------


@ORDERS
def test_a_hook_that_commits_for_logged_in_users_leaves_the_page_reachable(
    extension_first: bool,
) -> None:
    """While the database is down, a logged-in browser gets the status page,
    not the app's 500 from the hook that records the user's last visit."""
    db = SQLAlchemy()

    def database_app(app: Flask) -> None:
        # Nothing listens on port 1: connections are refused at once.
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            "postgresql+psycopg://app:secret@127.0.0.1:1/app?connect_timeout=2"
        )
        db.init_app(app)
        login_everywhere(app, login_view="login")
        visits = Blueprint("visits", __name__)

        @visits.before_app_request
        def record_visit() -> None:
            if current_user.is_authenticated:
                db.session.execute(sa.text("UPDATE users SET seen = now()"))
                db.session.commit()

        @visits.route("/session")
        def session_login() -> BaseResponse:
            login_user(User("1"))
            return redirect(url_for("index"))

        app.register_blueprint(visits)

    probed = make_app(database_app, extension_first=extension_first)

    @probed.health.check(tags=["ready"])
    def postgres() -> None:
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    probed.app.config["HEALTHCHECK_SHOW_DETAILS"] = True
    client = probed.app.test_client()
    # Logging in works (the hook finds no user yet); the next page fails.
    assert client.get("/session").status_code == 302
    assert client.get("/").status_code == 500
    page = client.get("/health", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert b"Unhealthy" in page.data
    assert client.get("/readyz").status_code == 503
    assert client.get("/livez").status_code == 200


# -- all of them, with the app's hooks run on purpose -----------------------------


def test_with_run_app_hooks_the_warning_names_each_url_and_status_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def everything(app: Flask) -> None:
        Talisman(app, force_https=False)
        Limiter(
            get_remote_address,
            app=app,
            default_limits=["3 per minute"],
            storage_uri="memory://",
        )
        login_everywhere(app, login_view="login")

    probed = make_app(everything, extension_first=False, HEALTHCHECK_RUN_APP_HOOKS=True)
    client = probed.app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_healthcheck"):
        statuses = [client.get("/readyz").status_code for _ in range(5)]
        statuses += [client.get("/livez").status_code for _ in range(2)]
    # Flask-Limiter counts per route: /livez has its own three.
    assert statuses == [302, 302, 302, 429, 429, 302, 302]
    messages = [
        record.getMessage()
        for record in caplog.records
        if record.name == "flask_healthcheck" and "before_request hook" in record.msg
    ]
    assert len(messages) == 3
    assert "answered the health URL /readyz with 302" in messages[0]
    assert "raised RateLimitExceeded the health URL /readyz with 429" in messages[1]
    assert "the health URL /livez with 302" in messages[2]
