"""Health-check endpoints for Flask apps.

The public names load when first used (:pep:`562`): ``python -m
flask_healthcheck.probe``, which a Docker ``HEALTHCHECK`` runs every few
seconds, imports this package first and must not pay for Flask. ``from
flask_healthcheck import HealthCheck`` works as always, and type checkers
see the names through the imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from importlib import import_module as _import_module

#: ``typing.TYPE_CHECKING`` without importing ``typing`` (a quarter of the
#: probe's import time): type checkers take any ``TYPE_CHECKING`` as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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

#: Each public name and the module that defines it (a module's own name
#: stands for the module).
_MODULES = {
    "CheckResult": "checks",
    "ConfigurationError": "errors",
    "HealthCheck": "extension",
    "HealthReport": "checks",
    "ProbeAccessLogFilter": "access_log",
    "RedactingFilter": "logs",
    "Status": "checks",
    "is_health_request": "hooks",
    "observe": "services",
    "signals": "signals",
    "time_left": "services",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and no others

    def __getattr__(name: str) -> Any:
        """Import the module of a public name on its first use; keep it."""
        module_name = _MODULES.get(name)
        if module_name is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        # Whatever is used first, the package logger redacts before anything
        # of the extension can log (importing ``logs`` puts the filter on it).
        _import_module(".logs", __name__)
        module = _import_module(f".{module_name}", __name__)
        value = module if name == module_name else getattr(module, name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
