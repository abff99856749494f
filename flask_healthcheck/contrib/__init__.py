"""Ready-made services, available by name without registration.

A user's own ``@health.service`` of the same name wins.
"""

from __future__ import annotations

from ..services import Service
from .memory import memory_backend
from .sqlalchemy import cursor_backend

_BUILTINS = {
    "memory_backend": Service.from_factory("memory_backend", memory_backend),
    "cursor_backend": Service.from_factory("cursor_backend", cursor_backend),
    "sqlalchemy": Service.from_factory("sqlalchemy", cursor_backend),
}


def services() -> dict[str, Service]:
    """The ready-made services by name."""
    return _BUILTINS


__all__ = ["cursor_backend", "memory_backend", "services"]
