"""Signals sent by the extension, so that alerting and metrics are
subscribers rather than code inside checks.

Every signal is sent with ``sender=`` the Flask app (the real object, not
the ``current_app`` proxy), so a subscriber can listen to one app only::

    from flask_healthcheck.signals import check_failed

    @check_failed.connect_via(app)
    def page_someone(app, result):
        ...

A subscriber that raises is logged on the ``flask_healthcheck`` logger and
changes nothing in the response or in the other subscribers. Their delivery
(in order, on a thread of the app's own) lives in ``delivery.py``.
"""

from __future__ import annotations

from blinker import Namespace

__all__ = ["check_failed", "check_recovered", "health_changed", "health_checked"]

_signals = Namespace()

#: Sent every time a check fails (also a non-critical one). Sender: the app.
#: Keyword: ``result`` (:class:`~flask_healthcheck.CheckResult`).
#:
#: .. versionadded:: 0.1.0
check_failed = _signals.signal("check-failed")

#: Sent when a check no longer fails after its previous run failed.
#: Sender: the app. Keyword: ``result`` (:class:`~flask_healthcheck.CheckResult`).
#:
#: .. versionadded:: 0.1.0
check_recovered = _signals.signal("check-recovered")

#: Sent when a run changes the app's overall status (that of every check's
#: latest result, whichever checks the run selected). Sender: the app.
#: Keywords: ``report`` (:class:`~flask_healthcheck.HealthReport`) and
#: ``previous`` (the previous status, ``"pass"``, ``"warn"`` or ``"fail"``;
#: ``None`` on an app's first run, which counts as a change only when it
#: does not pass).
#:
#: .. versionadded:: 0.1.0
health_changed = _signals.signal("health-changed")

#: Sent after every run, for exporters such as Prometheus gauges.
#: Sender: the app. Keyword: ``report`` (:class:`~flask_healthcheck.HealthReport`).
#:
#: .. versionadded:: 0.1.0
health_checked = _signals.signal("health-checked")
