"""Gunicorn entry for scenario 8: README's Kubernetes layout.

    gunicorn -k gthread -w 1 --threads 4 \
        'gunicorn_target:create_app(hung=True, timeout=0.5)'

``/livez`` runs a trivial check tagged ``live``; ``/readyz`` a database
check tagged ``ready`` that, with ``hung=True``, never returns (a database
that accepts connections and never answers). Only ``flask_healthcheck`` has
tagged endpoints, so only "ours" is measured.
"""

from __future__ import annotations

import threading

from flask import Flask

from flask_healthcheck import HealthCheck


def create_app(hung: bool = False, timeout: float = 0.5) -> Flask:
    app = Flask(__name__)
    app.config.update(
        HEALTHCHECK_ENDPOINTS={"/livez": ["live"], "/readyz": ["ready"]},
        HEALTHCHECK_TIMEOUT=timeout,
    )
    health = HealthCheck(app)
    never = threading.Event()

    @health.check(tags=["live"])
    def alive() -> bool:
        return True

    @health.check(tags=["ready"])
    def database() -> bool:
        if hung:
            never.wait()
        return True

    return app
