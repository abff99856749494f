"""An example app: ``flask --app example_app run``, then open /health.

The app keeps notes in an SQLite database in its instance folder (or in the
database ``DATABASE_URL`` names, such as a real PostgreSQL); with
``REDIS_URL`` set it checks that Redis too. Its health endpoint checks that database,
that the schema is in place and that the disk has room, and logs an alert
when a check fails. The clearskies documentation's three examples are
mounted under ``/clearskies/``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from . import alerts, clearskies
from .health import health, show_details

notes = sa.Table(
    "notes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.String(200), nullable=False),
)


def create_schema(engine: sa.Engine) -> None:
    """Create the table if the database answers; log if it doesn't."""
    try:
        notes.metadata.create_all(engine)
    except sa.exc.OperationalError as e:
        logging.getLogger(__name__).warning(
            "The database does not answer (%s); the app starts anyway, and"
            " /readyz fails until it does.",
            type(e.orig).__name__,
        )


def redis_answers(redis: Any) -> None:
    """Building the ``redis`` service pinged the server: nothing more to do."""


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL")
        or f"sqlite:///{Path(app.instance_path) / 'example.db'}",
        # Details for a request with the health token, or, in debug mode, a
        # browser on this machine; probes see the bare status.
        HEALTHCHECK_SHOW_DETAILS=show_details,
        HEALTH_TOKEN=os.environ.get("HEALTH_TOKEN"),
        # The number of proxies in front (a same-host nginx is 1).
        PROXY_COUNT=int(os.environ.get("PROXY_COUNT", "0")),
        HEALTHCHECK_TIMEOUT=3.0,
        # Kubernetes probes: /livez has no checks (the process answers),
        # /readyz runs the checks tagged "ready".
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
        HEALTHCHECK_SERVICE_ID="example-notes",
    )
    if os.environ.get("REDIS_URL"):
        # A real Redis to check as well: the ready-made ``redis`` service.
        app.config["REDIS_URL"] = os.environ["REDIS_URL"]
    if config:
        app.config.update(config)

    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        # A SQLite connection belongs to the thread that made it, and health
        # checks run on several: a new one each time, closed where it was made.
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    app.extensions["example_engine"] = engine
    # The app starts while its database is down, and says so on /readyz
    # (schema_ready fails) until the database answers.
    create_schema(engine)

    health.init_app(app)
    if app.config.get("REDIS_URL"):
        # Readiness depends on Redis too: the ready-made ``redis`` service,
        # in a check tagged "ready" for this app.
        health.add_check(redis_answers, name="redis", tags=("ready",), app=app)
    alerts.init_app(app)

    @app.get("/")
    def index() -> Any:
        create_schema(engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.select(notes.c.text)).scalars().all()
        return jsonify(notes=rows, health="/health", clearskies=clearskies.URLS)

    app.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, clearskies.create_apps()
    )
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        # The client's address from X-Forwarded-For, trusting exactly the
        # proxies we have: an address a client wrote itself is never used.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    return app
