"""The health gauges: one definition of their names, help, units and labels.

Two exporters show them: the OpenMetrics format of the health URLs
(:mod:`flask_healthcheck.openmetrics`, no dependency) and
:mod:`flask_healthcheck.contrib.prometheus` (prometheus_client's gauges,
set after every run). Both build their metrics from the definitions here,
so a dashboard or an alert rule written for one works with the other.
The names are public: changing one breaks users' dashboards and alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checks import CheckResult, HealthReport, Status

#: The value of a status gauge for each status.
STATUS_VALUES: dict[Status, float] = {"pass": 1.0, "warn": 0.5, "fail": 0.0}


@dataclass(frozen=True)
class GaugeDefinition:
    """One metric family, as both exporters declare it."""

    #: The metric family's name; it ends with ``_<unit>`` when it has one.
    name: str
    #: ``# HELP``: one line, said once.
    help: str
    #: ``# UNIT`` (OpenMetrics), or empty for a value without a unit.
    unit: str = ""
    #: The label names of each series.
    labels: tuple[str, ...] = ()
    #: ``# TYPE``: every health metric is a gauge (its value goes both ways).
    type: Literal["gauge"] = "gauge"

    def __post_init__(self) -> None:
        if self.unit and not self.name.endswith(f"_{self.unit}"):
            raise ValueError(f"{self.name!r} must end with its unit {self.unit!r}.")


#: ``health_check_status{check}``: 1 pass, 0.5 warn, 0 fail.
CHECK_STATUS = GaugeDefinition(
    "health_check_status",
    "Latest status of a health check: 1 pass, 0.5 warn, 0 fail.",
    labels=("check",),
)
#: ``health_check_duration_seconds{check}``: how long the check took.
CHECK_DURATION = GaugeDefinition(
    "health_check_duration_seconds",
    "How long the latest run of a health check took.",
    unit="seconds",
    labels=("check",),
)
#: ``health_check_last_run_timestamp_seconds{check}``: when the latest run
#: ended, to alert on results that stop coming.
CHECK_LAST_RUN = GaugeDefinition(
    "health_check_last_run_timestamp_seconds",
    "Unix time at which the latest run of a health check ended.",
    unit="seconds",
    labels=("check",),
)
#: The gauges of each check, in the order they are exposed.
CHECK_GAUGES = (CHECK_STATUS, CHECK_DURATION, CHECK_LAST_RUN)

#: ``health_status``: the status of the report a health URL answers with,
#: 1 pass, 0.5 warn, 0 fail. Only the health URLs expose it: a report is
#: one URL's selection (``/livez``, ``?exclude=``, one check), so a gauge
#: set after every run, as contrib.prometheus sets its gauges, would flap
#: between the statuses of different selections.
HEALTH_STATUS = GaugeDefinition(
    "health_status",
    "Status of the checks this health URL ran: 1 pass, 0.5 warn, 0 fail.",
)

#: Every gauge the health URLs expose, in order.
ALL_GAUGES = (HEALTH_STATUS, *CHECK_GAUGES)


def check_values(
    result: CheckResult, report: HealthReport
) -> tuple[float, float, float]:
    """The value of each gauge in :data:`CHECK_GAUGES` for one result, in
    that order.

    A result without a start time (made by hand) is taken to have started
    with its report.
    """
    started_at = result.started_at or report.started_at
    return (
        STATUS_VALUES[result.status],
        result.duration,
        started_at + result.duration,
    )
