"""Helpers for testing an app's health checks and the subscribers of its
signals, in the spirit of Flask-Mail's ``record_messages``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from flask import Flask

from . import signals
from .checks import CheckResult, HealthReport, Status
from .state import get_state


@dataclass
class RecordedSignals:
    """The signals one app sent while :func:`record_signals` was recording.

    .. versionadded:: 0.1.0
    """

    app: Flask
    #: The ``result`` of every ``check_failed``, in order.
    failed: list[CheckResult] = field(default_factory=list)
    #: The ``result`` of every ``check_recovered``, in order.
    recovered: list[CheckResult] = field(default_factory=list)
    #: ``(report, previous)`` of every ``health_changed``, in order.
    changed: list[tuple[HealthReport, Status | None]] = field(default_factory=list)
    #: The ``report`` of every ``health_checked``, in order.
    checked: list[HealthReport] = field(default_factory=list)

    def _on_failed(self, app: Flask, result: CheckResult) -> None:
        self.failed.append(result)

    def _on_recovered(self, app: Flask, result: CheckResult) -> None:
        self.recovered.append(result)

    def _on_changed(
        self, app: Flask, report: HealthReport, previous: Status | None
    ) -> None:
        self.changed.append((report, previous))

    def _on_checked(self, app: Flask, report: HealthReport) -> None:
        self.checked.append(report)


@contextmanager
def record_signals(app: Flask, timeout: float = 5.0) -> Iterator[RecordedSignals]:
    """Record the signals ``app`` sends inside the ``with`` block::

        with record_signals(app) as recorded:
            client.get("/health")
        assert [r.name for r in recorded.failed] == ["database"]

    Leaving the block waits until the signals of the block's runs are
    delivered (probes deliver them on another thread).

    :param app: the app whose signals to record.
    :param timeout: seconds to wait for delivery when the block ends.

    .. versionadded:: 0.1.0
    """
    recorded = RecordedSignals(app)
    with ExitStack() as stack:
        for signal, receiver in (
            (signals.check_failed, recorded._on_failed),
            (signals.check_recovered, recorded._on_recovered),
            (signals.health_changed, recorded._on_changed),
            (signals.health_checked, recorded._on_checked),
        ):
            stack.enter_context(signal.connected_to(receiver, app))
        yield recorded
        _wait(app, timeout)


def _wait(app: Flask, timeout: float) -> None:
    """Wait for ``app``'s signals as a test does: failing if they don't come."""
    if not get_state(app).wait_for_signals(timeout):
        raise AssertionError(
            f"The health signals of {app.name!r} were not delivered"
            f" within {timeout:g} s; does a subscriber hang?"
        )
