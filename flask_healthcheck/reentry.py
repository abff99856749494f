"""Knowing that code runs inside the extension's own work: a check, or a
subscriber of its signals.

A health run asked for from there would set off another run (a check that
runs the checks, a subscriber of ``check_failed`` that runs them again),
without end: ``HealthCheckState.run`` answers such a call from the latest
results instead.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

logger = logging.getLogger("flask_healthcheck")

#: What the current code runs inside: ``("check", name)`` while a check (or
#: its services and teardown) runs, ``("subscriber", None)`` while a
#: subscriber of a health signal is called; None elsewhere.
inside: ContextVar[tuple[str, str | None] | None] = ContextVar(
    "flask_healthcheck_inside", default=None
)


def answer_from_latest(
    where: tuple[str, str | None], app_name: str, said: set[str]
) -> str | None:
    """Say once per app and ``where`` (a kind in ``said``) that a run asked
    for from there answers from the latest results; returns the name of
    the check that asked, which the answer leaves out (it would wait for
    itself)."""
    kind, name = where
    if kind not in said:
        said.add(kind)
        caller = (
            f"the health check {name!r}"
            if kind == "check"
            else "a subscriber of a health signal"
        )
        logger.warning(
            "Health checks of app %r were asked for from %s: they answer from"
            " their latest results (a check never run yet runs once) rather"
            " than run again, as a run from there would set off another,"
            " without end. Logged once.",
            app_name,
            caller,
        )
    return name if kind == "check" else None
