"""What the extension keeps for each app, and the one way to run its checks.

Views, ``flask health``, ``health.run()`` and the background refresh all
call :meth:`HealthCheckState.run`, so caching, single flight, timeouts and
signals behave the same whoever asks.

The state is the app's validated checks (:class:`~.checkset.CheckSet`:
what is registered, and which checks a request selects) and the runtime
that runs them: the runner, the refresher and its election, the delivery
of signals and log lines, draining, and starting afresh after a fork.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from functools import partial

from flask import Flask, current_app

from .background import Refresher, WeakCall, release_when_dropped
from .checks import STATUSES, Check, HealthReport, Status
from .checkset import CheckSet, Registry
from .config import Settings
from .delivery import STUCK_SECONDS, SignalDispatcher
from .errors import ConfigurationError
from .forks import call_after_fork, check_fork, fork_hooks, reset_after_fork
from .history import History
from .hostlock import HostLock, lock_name
from .recorder import Alerting, Outbox
from .reentry import answer_from_latest, inside
from .runner import Runner
from .sections import Pending, SectionRunner
from .services import Service

logger = logging.getLogger("flask_healthcheck")

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "healthcheck"

#: Seconds a process that does not refresh reuses its look at the host lock
#: (is another process refreshing?) when deciding whether to alert.
ALERTING_LOOK_SECONDS = 1.0


class HealthCheckState(CheckSet):
    """What the extension keeps for one app, in ``app.extensions["healthcheck"]``:
    its validated checks (the :class:`~.checkset.CheckSet` it extends) and
    what runs them.

    :param shared: the registry of the extension object, serving every app.
    :param ready_made: services available by name without registration.
    """

    def __init__(
        self,
        app: Flask,
        settings: Settings,
        shared: Registry,
        ready_made: Mapping[str, Service],
    ) -> None:
        super().__init__(settings, shared, ready_made)
        self.app = app
        self.signals = SignalDispatcher(app.name)
        #: Where the runner queues log lines and signals.
        self.outbox = Outbox(self.signals)
        #: Whether runs here send the alert signals: set before each run
        #: (see :meth:`_alerting`), read by the runner's recorder.
        self._alerts = Alerting()
        self.runner = Runner(
            app,
            self.outbox,
            default_timeout=settings.timeout,
            alerting=self._alerts,
            threads=settings.threads,
        )
        #: Runs the sections (``health.add_section``) on the runner's threads.
        self.section_runner = SectionRunner(self.runner, settings.timeout)
        #: With several processes per host, the one holding this lock refreshes
        #: (``HEALTHCHECK_RUN_DIR``). None without an election: with no run
        #: directory, or in tests (``TESTING``), whose parallel processes must
        #: not silence each other.
        self.host_lock: HostLock | None = None
        if settings.run_dir is not None and not app.testing:
            self.host_lock = HostLock(
                settings.run_dir,
                lock_name(app.import_name, settings.url, app.root_path),
                # The holder beats from a thread of its own, so no run
                # keeps it from beating: three intervals without a beat
                # mean it is frozen.
                stale_after=3 * settings.interval,
            )
        #: Whether another process holds the host lock, and until when
        #: (``time.monotonic()``) that answer is reused: see :meth:`_alerting`.
        self._elsewhere = (False, 0.0)
        # The refresher's thread holds this state weakly, so a dropped app
        # is collected, and the thread ends at its next run.
        refresh, take_over = WeakCall(self._refresh), WeakCall(self._take_over)
        self.refresher = Refresher(
            app.name,
            refresh,
            settings.interval,
            self.host_lock,
            on_elected=take_over,
            alerting=self._alerts,
        )
        refresh.gone = take_over.gone = self.refresher.stop
        if app.testing:
            # Requests don't start the refresh of a test app, only
            # ``health.start()`` does: a suite of many apps would run them
            # all, for ever.
            self.refresher.stopped = True
        #: Set by ``health.drain()``: readiness endpoints fail.
        self.draining = False
        #: What :meth:`run` called from a check or a subscriber has said once.
        self._reentry: set[str] = set()
        reset_after_fork(self, app)
        self._release_when_dropped()

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's threads are gone, a
        lock one of them held at the fork would stay held forever, and its
        results and pending signals are not this process's."""
        super().after_fork_in_child()
        self.outbox.after_fork_in_child()
        self._elsewhere = (False, 0.0)
        self.runner.after_fork_in_child()
        self.section_runner.after_fork_in_child()
        self.signals.after_fork_in_child()
        self.refresher.after_fork_in_child()
        self._release_when_dropped()

    def _release_when_dropped(self) -> None:
        """Once this state (and so its app) is collected, let the idle
        threads it made exit now rather than after their idle time."""
        previous = getattr(self, "_release", None)
        if previous is not None:
            previous.detach()
        self._release = release_when_dropped(self, self.runner.pool, self.signals)

    def run_after_fork(self) -> None:
        """In a forked child, once every app is reset: ``after_fork`` functions."""
        own = [*self.shared.after_fork, *self.own.after_fork]
        call_after_fork(self.app, [*fork_hooks(), *own])

    @property
    def history(self) -> History:
        """The recent results of this process, for the status page and feeds."""
        return self.runner.recorder.history

    # -- running --------------------------------------------------------------

    def start_sections(self) -> Pending:
        """Start the app's sections for a response that shows them; raises
        ``ConfigurationError`` as :meth:`checks` does."""
        sections = self.sections()
        self.runner.use_services(self.services())
        return self.section_runner.start(sections)

    def run(
        self,
        checks: Sequence[Check] | None = None,
        *,
        fresh: bool = False,
        deliver: bool = False,
        background: bool = False,
    ) -> HealthReport:
        """A report on ``checks`` (default: all of the app's).

        :param fresh: run every check now (or join its run in flight), for
            ``health.run()``, ``flask health`` and the refresh. A probe
            (False) reuses each check's latest result while it is younger
            than ``HEALTHCHECK_CACHE_TTL``, or, while the background refresh
            runs in this process, than two intervals: a refresh that stalls
            never keeps a stale answer alive.
        :param deliver: return only once the signals the run causes are
            delivered (for at most 10 s more than ``HEALTHCHECK_TIMEOUT``), as
            ``health.run()`` and ``flask health`` promise. Probes and the
            refresh never wait for subscribers.
        :param background: the refresh's run: checks that burn CPU share
            fewer threads (see :meth:`.Scheduler.start`).
        """
        check_fork()
        if checks is None:
            checks = self.checks()
        # Validated with the checks: what their parameters are injected from.
        self.runner.use_services(self.services())
        max_age = 0.0 if fresh else self._max_age()
        where = inside.get()
        if where is not None:  # in a check or a subscriber: no run from there
            asking = answer_from_latest(where, self.app.name, self._reentry)
            checks = [check for check in checks if check.name != asking]
            max_age, deliver = math.inf, False
        self._alerts.on = self._alerting()
        log_lines = self.outbox.log_lines
        log_lines.begin()
        try:
            report, number = self.runner.run(
                checks, max_age=max_age, background=background
            )
        finally:
            # On this thread, before the caller gets the report: a test's
            # captured log has the lines of the failures it caused.
            log_lines.end()
        # Long enough for a hung subscriber to be left behind and the others
        # to have their signals.
        bound = STUCK_SECONDS + self.settings.timeout
        if deliver and not self.signals.wait(number, bound):
            logger.warning(
                "The health signals were not all delivered within %g s; a"
                " subscriber may hang.",
                bound,
            )
        return report

    def wait_for_signals(self, timeout: float) -> bool:
        """Wait until the signals of every run so far are delivered; False
        if some are not after ``timeout`` seconds. The one wait behind
        :meth:`HealthCheck.wait_for_signals` and ``record_signals``."""
        return self.signals.flush(timeout)

    def _max_age(self) -> float:
        settings = self.settings
        if settings.interval > 0 and self.refresher.running:
            return max(settings.cache_ttl, 2 * settings.interval)
        return settings.cache_ttl

    def _refresh(self) -> None:
        report = self.run(fresh=True, background=True)
        if self.host_lock is not None:
            # For the worker that takes over should this one die: queued
            # after this run's signals, so written once they are delivered
            # (and only while this process holds the lock). A holder killed
            # before leaves the previous note, and its successor sends again
            # what this one could not.
            note = {
                "status": report.status,
                "checks": {r.name: r.status for r in report.checks},
            }
            self.signals.put([partial(self.host_lock.write_note, note)])

    def _alerting(self) -> bool:
        """Whether runs in this process send the alert signals
        (``check_failed``, ``check_recovered``, ``health_changed``): not
        while another process of the host is the one elected to refresh,
        whether the refresh runs here (and lost the election) or not
        (``flask health``, ``health.run()`` next to a live refresher), nor
        from a run a pre-fork master had in progress when it forked."""
        if self.refresher.forked:  # the children refresh and alert
            return False
        if self.refresher.running:
            return self.refresher.elected
        if self.host_lock is None or self.settings.interval <= 0:
            return True  # no refresher anywhere: every run alerts
        elsewhere, until = self._elsewhere
        now = time.monotonic()
        if now >= until:  # a cheap look, but not one per run
            elsewhere = self.host_lock.held_elsewhere()
            self._elsewhere = (elsewhere, now + ALERTING_LOOK_SECONDS)
        return not elsewhere

    def _take_over(self) -> None:
        """This process was just elected: go on from what the previous
        refreshing worker last alerted, if it left a note."""
        assert self.host_lock is not None
        note = self.host_lock.read_note()
        if note is None:
            return
        checks = note.get("checks")
        status = note.get("status")
        if isinstance(checks, dict) and status in STATUSES:
            statuses: dict[str, Status] = {
                name: value for name, value in checks.items() if value in STATUSES
            }
            self.runner.assume(statuses, status)

    def start(self) -> None:
        """Start the background refresh now (see ``HEALTHCHECK_INTERVAL``)."""
        check_fork()
        if self.settings.interval <= 0:
            raise ConfigurationError(
                "HEALTHCHECK_INTERVAL must be a number of seconds greater than 0"
                " for the background refresh to start."
            )
        self.checks()
        self.refresher.start()

    def stop(self) -> None:
        """Stop the background refresh until :meth:`start`."""
        self.refresher.stop()


def get_state(app: Flask | None = None) -> HealthCheckState:
    """The extension's state for ``app``, or for the current app."""
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        state = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "The current Flask app is not registered with this 'HealthCheck'"
            " instance. Did you forget to call 'init_app', or did you create"
            " multiple 'HealthCheck' instances?"
        ) from None
    assert isinstance(state, HealthCheckState)
    return state
