"""Turning a report into response bodies. Views negotiate; this renders."""

from __future__ import annotations

import json
from typing import Any

from .checks import HealthReport

#: The seed's ``status`` values: a warn still serves traffic.
_ENVELOPE_STATUS = {"pass": "success", "warn": "success", "fail": "failure"}


def check_details(report: HealthReport) -> dict[str, dict[str, Any]]:
    """Per-check results as shown when details are allowed."""
    return {
        result.name: {
            "status": result.status,
            "duration_ms": round(result.duration * 1000, 1),
            "error": result.error,
        }
        for result in report.checks
    }


def envelope(report: HealthReport, *, details: bool) -> str:
    """The clearskies envelope, byte for byte as clearskies 1.x writes it.

    ``json.dumps`` with its defaults gives clearskies' key order and spacing;
    Flask's ``jsonify`` would sort the keys and drop the spaces.
    """
    status = _ENVELOPE_STATUS[report.status]
    data: Any
    if details:
        data = {"checks": check_details(report)}
    else:
        data = {} if status == "success" else []
    return json.dumps(
        {
            "status": status,
            "error": "",
            "data": data,
            "pagination": {},
            "input_errors": {},
        }
    )
