"""The clearskies documentation's three examples, one small app each.

- ``/clearskies/cursor-backend/health``: ``services=["cursor_backend"]`` with no
  database configured: fails (500), as in clearskies.
- ``/clearskies/memory-backend/health``: ``services=["memory_backend"]``: passes.
- ``/clearskies/callable/health``: a callable with a service injected by name.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_healthcheck import HealthCheck

URLS = [
    "/clearskies/cursor-backend/health",
    "/clearskies/memory-backend/health",
    "/clearskies/callable/health",
]


def is_healthy(memory_backend: Any) -> bool:
    """The callable gets ``memory_backend`` injected by parameter name."""
    return memory_backend is not None


def _app(name: str, **options: Any) -> Flask:
    app = Flask(f"clearskies-{name}")
    HealthCheck(app, **options)
    return app


def create_apps() -> dict[str, Any]:
    return {
        "/clearskies/cursor-backend": _app(
            "cursor-backend", services=["cursor_backend"]
        ),
        "/clearskies/memory-backend": _app(
            "memory-backend", services=["memory_backend"]
        ),
        "/clearskies/callable": _app("callable", callable=is_healthy),
    }
