"""Ready-made services, available by name without registration.

A user's own ``@health.service`` of the same name wins. The factories
:func:`http` and :func:`disk` make services to register under any name.
Every network call they make has a timeout below the check's own.
"""

from __future__ import annotations

from ..services import Service
from .disk_space import DiskSpaceError, DiskUsage, disk
from .http_get import HTTPResult, HTTPStatusError, http
from .memory import memory_backend
from .redis import redis_client
from .sqlalchemy import cursor_backend

_BUILTINS = {
    "memory_backend": Service.from_factory("memory_backend", memory_backend),
    "cursor_backend": Service.from_factory("cursor_backend", cursor_backend),
    "sqlalchemy": Service.from_factory("sqlalchemy", cursor_backend),
    "redis": Service.from_factory("redis", redis_client),
}


def services() -> dict[str, Service]:
    """The ready-made services by name."""
    return _BUILTINS


__all__ = [
    "DiskSpaceError",
    "DiskUsage",
    "HTTPResult",
    "HTTPStatusError",
    "cursor_backend",
    "disk",
    "http",
    "memory_backend",
    "redis_client",
    "services",
]
