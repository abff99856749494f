"""Health-check endpoints for Flask apps."""

from __future__ import annotations

from . import signals
from .checks import CheckResult, HealthReport
from .errors import ConfigurationError
from .extension import HealthCheck

__all__ = [
    "CheckResult",
    "ConfigurationError",
    "HealthCheck",
    "HealthReport",
    "signals",
]
