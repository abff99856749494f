"""Draining: an app on its way out fails its readiness probes, and only those.

Kubernetes (and any load balancer that probes) stops sending traffic to an
instance whose readiness fails, while a liveness failure gets it killed.
So an app that is shutting down, once drained with ``health.drain()``,
answers every readiness endpoint with a failure whose reason is
``draining``, without running the checks, and keeps answering its liveness
endpoint and main URL as before while it finishes the requests it has.
"""

from __future__ import annotations

from .checks import CheckResult, HealthReport
from .endpoints import Endpoint

#: An endpoint is a readiness endpoint when its tags include this one
#: (``HEALTHCHECK_ENDPOINTS = {"/readyz": ["ready"]}``).
READINESS_TAG = "ready"

#: The reason a readiness endpoint gives while the app drains.
REASON = "draining: the app is shutting down and takes no new traffic"


def is_readiness(endpoint: Endpoint) -> bool:
    """Whether ``endpoint`` fails while the app drains: one whose tags
    include ``"ready"``. The main URL (every check) is not one."""
    return endpoint.tags is not None and READINESS_TAG in endpoint.tags


def draining_report() -> HealthReport:
    """What a readiness endpoint answers while the app drains: one failing
    result, named ``draining``."""
    return HealthReport.from_results(
        [CheckResult(name="draining", status="fail", error=REASON)]
    )
