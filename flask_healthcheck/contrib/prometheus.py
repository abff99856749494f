"""Prometheus gauges of every check: ``pip install flask-healthchecks[prometheus]``.

::

    from prometheus_client import make_wsgi_app
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from flask_healthcheck.contrib.prometheus import init_prometheus

    init_prometheus(app)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app()})

The gauges are set by a ``health_checked`` subscriber, after every run:
a scrape reads the latest run, it never runs the checks itself (a scrape
storm must not reach the database). Set ``HEALTHCHECK_INTERVAL`` so the
gauges stay fresh when nothing else probes the endpoint.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask

from .. import signals
from ..checks import HealthReport
from ._support import optional_import

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Gauge

#: The value of ``health_check_status`` for each status.
STATUS_VALUES = {"pass": 1.0, "warn": 0.5, "fail": 0.0}


@dataclass(frozen=True)
class HealthMetrics:
    """The gauges of one registry."""

    #: ``health_check_status{check}``: 1 pass, 0.5 warn, 0 fail.
    status: Gauge
    #: ``health_check_duration_seconds{check}``: how long the check took.
    duration: Gauge

    def update(self, report: HealthReport) -> None:
        """Set the gauges of every check in ``report``."""
        for result in report.checks:
            self.status.labels(check=result.name).set(STATUS_VALUES[result.status])
            self.duration.labels(check=result.name).set(result.duration)

    def receiver(self, sender: Flask, report: HealthReport, **kwargs: Any) -> None:
        """The ``health_checked`` subscriber."""
        self.update(report)


_metrics: weakref.WeakKeyDictionary[CollectorRegistry, HealthMetrics] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry | None = None) -> HealthMetrics:
    """The gauges in ``registry`` (default: prometheus_client's), made once:
    a registry refuses a second metric of the same name."""
    prometheus_client = optional_import("prometheus_client", "prometheus")
    if registry is None:
        registry = prometheus_client.REGISTRY
    with _lock:
        metrics = _metrics.get(registry)
        if metrics is None:
            metrics = _metrics[registry] = HealthMetrics(
                status=prometheus_client.Gauge(
                    "health_check_status",
                    "Latest status of a health check: 1 pass, 0.5 warn, 0 fail.",
                    ["check"],
                    registry=registry,
                ),
                duration=prometheus_client.Gauge(
                    "health_check_duration_seconds",
                    "How long the latest run of a health check took.",
                    ["check"],
                    registry=registry,
                ),
            )
        return metrics


def init_prometheus(
    app: Flask, registry: CollectorRegistry | None = None
) -> HealthMetrics:
    """Export the checks of ``app`` as gauges in ``registry``.

    :param app: the app whose runs set the gauges; connecting it twice
        changes nothing.
    :param registry: where the gauges live; default prometheus_client's
        global registry, which ``make_wsgi_app()`` serves. The ``check``
        label does not name the app: give each app its own registry when
        one process serves several apps with checks of the same names.
    :returns: the gauges, for tests or to update them by hand.
    """
    metrics = metrics_for(registry)
    signals.health_checked.connect(metrics.receiver, app, weak=False)
    return metrics
