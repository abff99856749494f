"""What results cause: history, signals and log lines.

Each result that becomes a check's latest is added to the
:class:`~flask_healthcheck.history.History` once, however many requests
reuse it, and turned into the signals and log lines it causes, in the
order results came; the runner queues them for delivery, another thread's
job. A result is settled when it becomes its check's latest and recorded
with the others of its run (one lock, two clock readings for the history,
each result entered at the time it was had); the app's overall status is
kept up to date as they come, not worked out again from every check's
latest per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from flask import Flask

from . import signals
from .checks import Check, CheckResult, HealthReport, Status
from .delivery import Delivery, Send, SignalDispatcher
from .history import History
from .logs import LogLines, log_passed, log_transition, passes_logged

#: A result that became its check's latest, to be recorded: its check, the
#: result, the check's latest before it, what the check raised (for the
#: log's traceback), and when it became the latest (on the history's
#: monotonic clock). A plain tuple: one is made for every check of every
#: run, and a named tuple takes several times as long to make.
Settled = tuple[Check, CheckResult, "CheckResult | None", "BaseException | None", float]


class Alerting:
    """Whether runs in this process send the alert signals (``check_failed``,
    ``check_recovered``, ``health_changed``): False while another process of
    the host sends them. A flag set from above (by the state before each
    run, cleared by the refresher in a parent that forks while refreshing)
    and read here: the recorder never asks up."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


class Outbox:
    """Where the runner queues what results cause, under its lock (so
    :meth:`put` never blocks): log lines for the thread that asked for the
    run, signals for the app's delivery thread. The state owns it and hands
    it to the runner, which so never calls back up into the state.
    """

    def __init__(self, signals: SignalDispatcher) -> None:
        self.signals = signals
        #: The log lines of results, written by the thread that ran them.
        self.log_lines = LogLines()

    def after_fork_in_child(self) -> None:
        """The parent's pending lines are not this process's."""
        self.log_lines = LogLines()

    def put(self, deliveries: list[Delivery]) -> int:
        """Queue ``deliveries`` in order; the number of the last signal
        delivery, for :meth:`.SignalDispatcher.wait`."""
        lines = [d for d in deliveries if not isinstance(d, Send)]
        if lines:
            deliveries = [d for d in deliveries if isinstance(d, Send)]
            if self.log_lines.put(lines):
                # Recorded outside any run (a check that finished after its
                # timeout): no run's thread will write them.
                deliveries.append(self.log_lines.write_late)
        return self.signals.put(deliveries)


class Recorder:
    """Records the results of one app. Not thread-safe: the runner calls
    it under its lock, so results are recorded, and their signals queued,
    in the order they came.

    :param alerting: off while another process of the host sends the
        alert signals: runs then send ``health_checked`` only.
    """

    def __init__(self, app: Flask, alerting: Alerting) -> None:
        self.app = app
        self._alerting = alerting
        #: The recent results of this process, for the status page.
        self.history = History()
        #: The app's status over every check's latest result, for ``health_changed``.
        self.status: Status | None = None
        #: Each check's status as the host last alerted it, from :meth:`assume`;
        #: what the check's next result is compared with instead of its latest.
        self._assumed: dict[str, Status] = {}
        #: Each check's rank (see :meth:`flush`), and how many checks have each:
        #: the overall status of every check's latest result.
        self._ranks: dict[str, int] = {}
        self._counts = [0, 0, 0]
        #: Results settled and not yet recorded, in order.
        self._settled: list[Settled] = []

    def assume(self, statuses: Mapping[str, Status], status: Status | None) -> None:
        """Compare the next result of each check in ``statuses``, and the
        next overall status, with these instead of this process's own."""
        self._assumed = dict(statuses)
        self.status = status

    def settle(
        self,
        check: Check,
        result: CheckResult,
        previous: CheckResult | None,
        error: BaseException | None,
    ) -> None:
        """``result`` just became the check's latest (after ``previous``):
        :meth:`flush` records it, with the others of its run. ``error`` is
        what the check raised, for the log."""
        tick = self.history.monotonic()
        self._settled.append((check, result, previous, error, tick))

    def flush(self, deliveries: list[Delivery]) -> None:
        """Record the results settled so far, in the order they came, each
        at the time it was had, and add the signals and log lines they
        cause to ``deliveries``."""
        if not self._settled:
            return
        settled, self._settled = self._settled, []
        self.history.record_many(
            [item[1] for item in settled], [item[4] for item in settled]
        )
        app = self.app
        alerting = self._alerting.on
        passes = passes_logged()
        assumed = self._assumed
        ranks, counts = self._ranks, self._counts
        for check, result, previous_result, error, _ in settled:
            status = result.status
            # What it makes of the app's overall status: 2 fails it (a
            # critical check failed), 1 makes it warn at least, 0 passes.
            rank = (
                0
                if status == "pass"
                else 2
                if status == "fail" and result.critical
                else 1
            )
            name = check.name
            if (was := ranks.get(name)) != rank:
                if was is not None:
                    counts[was] -= 1
                counts[rank] += 1
                ranks[name] = rank
            previous = previous_result.status if previous_result is not None else None
            alerted = assumed.pop(name, previous) if assumed else previous
            if (status == "fail" or alerted == "fail") and alerting:
                if status == "fail":
                    deliveries.append(Send(signals.check_failed, app, result=result))
                else:
                    deliveries.append(Send(signals.check_recovered, app, result=result))
            if status != previous or status == "fail":
                deliveries.append(
                    partial(log_transition, app.name, result, previous_result, error)
                )
            if status == "pass" and passes:
                deliveries.append(partial(log_passed, app.name, result))

    def run(
        self,
        latest: Iterable[CheckResult],
        report: HealthReport,
        deliveries: list[Delivery],
    ) -> None:
        """Record a finished run: the app's status is that of every check's
        ``latest`` result (read only when it changed); a run that changes it
        sends ``health_changed`` with all of them. Every run sends
        ``health_checked`` with its ``report``."""
        counts = self._counts
        status: Status = "fail" if counts[2] else "warn" if counts[1] else "pass"
        previous, self.status = self.status, status
        app = self.app
        if (
            status != previous
            and (previous is not None or status != "pass")
            and self._alerting.on
        ):
            changed = HealthReport.from_results(list(latest))
            deliveries.append(
                Send(signals.health_changed, app, report=changed, previous=previous)
            )
        self.history.record_overall(status)
        if signals.health_checked.has_receivers_for(app):
            deliveries.append(Send(signals.health_checked, app, report=report))
