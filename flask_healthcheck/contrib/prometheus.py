"""Prometheus gauges of every check: ``pip install flask-healthchecks[prometheus]``.

::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from flask_healthcheck.contrib.prometheus import init_prometheus, make_metrics_app

    init_prometheus(app)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_metrics_app()})

The gauges are set by a ``health_checked`` subscriber, after every run:
a scrape reads the latest run, it never runs the checks itself (a scrape
storm must not reach the database). Their names, help, units and labels
are those of :mod:`flask_healthcheck.gauges`, which the health URLs'
OpenMetrics format shows too (``health_status``, a report's status, is
the health URLs' own: see there). Set ``HEALTHCHECK_INTERVAL`` so the
gauges stay fresh when nothing else probes the endpoint.

Under a server with several worker processes, set prometheus_client's
``PROMETHEUS_MULTIPROC_DIR`` (see ``docs/deploying.md``): every worker then
answers a scrape with the latest value of each gauge among all of them
(``multiprocess_mode="mostrecent"``), whichever worker ran the check.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask

from .. import signals
from ..checks import CheckResult, HealthReport
from ..gauges import CHECK_GAUGES, check_values
from ..gauges import STATUS_VALUES as STATUS_VALUES
from ._support import optional_import

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Gauge

#: A WSGI application.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Results remembered per check as exported: a report that reuses one of
#: them (a cached result) does not set the gauges again.
REMEMBERED_RESULTS = 8


@dataclass(frozen=True)
class HealthMetrics:
    """The gauges of one registry.

    In prometheus_client's multiprocess mode each gauge reports the value
    written last by any process (``multiprocess_mode="mostrecent"``): the
    latest run of a check on the host, whichever worker ran it, and still
    after that worker died. Other modes don't fit: ``all`` gives one series
    per worker, ``max``/``min`` hide a failure or a recovery, and
    ``livemostrecent`` forgets a check's latest result when the worker that
    ran it exits (``mark_process_dead``) although nothing newer exists.
    """

    #: ``health_check_status{check}``: 1 pass, 0.5 warn, 0 fail.
    status: Gauge
    #: ``health_check_duration_seconds{check}``: how long the check took.
    duration: Gauge
    #: ``health_check_last_run_timestamp_seconds{check}``: Unix time at which
    #: the latest run ended, to alert on results that stop coming.
    last_run: Gauge
    #: The latest results of each check this process exported, newest last.
    _exported: dict[str, deque[CheckResult]] = field(
        default_factory=dict, compare=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def update(self, report: HealthReport) -> None:
        """Set the gauges of every check in ``report`` that ran since this
        process last set them. A result reused from the cache is not set
        again: in multiprocess mode the gauge written last wins, and an old
        result written now would hide another worker's newer one.

        Results are told apart by identity, not by their ``started_at``: a
        wall-clock step back would make every new result look older than
        the last one exported, and freeze the gauges."""
        gauges = (self.status, self.duration, self.last_run)  # CHECK_GAUGES' order
        with self._lock:
            for result in report.checks:
                exported = self._exported.get(result.name)
                if exported is None:
                    exported = self._exported[result.name] = deque(
                        maxlen=REMEMBERED_RESULTS
                    )
                if any(result is seen for seen in exported):
                    continue
                exported.append(result)
                values = check_values(result, report)
                for gauge, value in zip(gauges, values, strict=True):
                    gauge.labels(check=result.name).set(value)

    def receiver(self, sender: Flask, report: HealthReport, **kwargs: Any) -> None:
        """The ``health_checked`` subscriber."""
        self.update(report)


_metrics: weakref.WeakKeyDictionary[CollectorRegistry, HealthMetrics] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry | None = None) -> HealthMetrics:
    """The gauges in ``registry`` (default: prometheus_client's), made once:
    a registry refuses a second metric of the same name.

    .. versionadded:: 0.1.0
    """
    prometheus_client = optional_import("prometheus_client", "prometheus")
    if registry is None:
        registry = prometheus_client.REGISTRY
    with _lock:
        metrics = _metrics.get(registry)
        if metrics is None:
            # The definitions are shared with the health URLs' OpenMetrics.
            status, duration, last_run = (
                prometheus_client.Gauge(
                    definition.name,
                    definition.help,
                    definition.labels,
                    unit=definition.unit,
                    registry=registry,
                    multiprocess_mode="mostrecent",
                )
                for definition in CHECK_GAUGES
            )
            metrics = _metrics[registry] = HealthMetrics(status, duration, last_run)
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

    .. versionadded:: 0.1.0
    """
    metrics = metrics_for(registry)
    signals.health_checked.connect(metrics.receiver, app, weak=False)
    return metrics


def make_metrics_app(registry: CollectorRegistry | None = None) -> WSGIApp:
    """A WSGI app answering scrapes, to mount at ``/metrics``.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus_client's multiprocess
    mode, for servers with several worker processes), each scrape collects
    the metrics of every process of the server from that directory, as
    prometheus_client documents; otherwise it serves ``registry`` (default:
    prometheus_client's global one) like ``make_wsgi_app``.

    .. versionadded:: 0.1.0
    """
    prometheus_client = optional_import("prometheus_client", "prometheus")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        app: WSGIApp = prometheus_client.make_wsgi_app(
            registry if registry is not None else prometheus_client.REGISTRY
        )
        return app
    multiprocess = optional_import("prometheus_client.multiprocess", "prometheus")

    def metrics(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        # A registry per scrape: the collector reads the files of every
        # process, the dead ones' included, each time.
        scrape = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)
        served: Iterable[bytes] = prometheus_client.make_wsgi_app(scrape)(
            environ, start_response
        )
        return served

    return metrics
