"""Health-check endpoints for Flask apps."""

from __future__ import annotations

from . import signals
from .access_log import ProbeAccessLogFilter
from .checks import CheckResult, HealthReport, Status
from .errors import ConfigurationError
from .extension import HealthCheck
from .hooks import is_health_request
from .logs import RedactingFilter
from .services import observe, time_left

__all__ = [
    "CheckResult",
    "ConfigurationError",
    "HealthCheck",
    "HealthReport",
    "ProbeAccessLogFilter",
    "RedactingFilter",
    "Status",
    "is_health_request",
    "observe",
    "signals",
    "time_left",
]
