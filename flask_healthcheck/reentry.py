"""Knowing that code runs inside the extension's own work: a check, or a
subscriber of its signals.

A health run asked for from there would set off another run (a check that
runs the checks, a subscriber of ``check_failed`` that runs them again),
without end: ``HealthCheckState.run`` answers such a call from the latest
results instead.
"""

from __future__ import annotations

from contextvars import ContextVar

#: What the current code runs inside: ``("check", name)`` while a check (or
#: its services and teardown) runs, ``("subscriber", None)`` while a
#: subscriber of a health signal is called; None elsewhere.
inside: ContextVar[tuple[str, str | None] | None] = ContextVar(
    "flask_healthcheck_inside", default=None
)
