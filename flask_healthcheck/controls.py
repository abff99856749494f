"""What an app's health does at run time, asked through the extension
object: run the checks now, start and stop the background refresh, drain,
and wait for signals.

:class:`~flask_healthcheck.HealthCheck` has these methods from
:class:`AppControls`; registering checks and ``init_app`` are its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask

from .checks import HealthReport
from .state import get_state

logger = logging.getLogger("flask_healthcheck")


class AppControls:
    """The run-time methods of :class:`~flask_healthcheck.HealthCheck`.
    Each finds the app's state (the current app's by default), so one
    extension object serves many apps."""

    def run(
        self, *, tags: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> HealthReport:
        """Run the current app's checks now and return the report.

        Needs an app context. Every selected check runs now, or is joined if
        it is running already; the signals the run causes are delivered
        before this returns.

        :param tags: run only the checks carrying any of these tags. A tag
            that an endpoint declares is valid with no check carrying it (the
            report passes, empty), as ``GET`` on that endpoint does.
        :param exclude: names of checks to leave out.
        :raises ConfigurationError: if the health configuration is wrong, or
            a tag is neither declared by an endpoint nor carried by a check.
        """
        state = get_state()
        return state.run(
            state.select(tags=tags, exclude=exclude), fresh=True, deliver=True
        )

    def start(self, app: Flask | None = None) -> None:
        """Start the background refresh now instead of at the first request.

        :param app: the app; the current app if not given.
        :raises ConfigurationError: if ``HEALTHCHECK_INTERVAL`` is 0.
        """
        get_state(app).start()

    def stop(self, app: Flask | None = None) -> None:
        """Stop the background refresh until :meth:`start`: requests no
        longer start it. Waits for a run in progress.

        :param app: the app; the current app if not given.
        """
        get_state(app).stop()

    def drain(self, app: Flask | None = None) -> None:
        """Put ``app`` (or the current app) in draining: its readiness
        endpoints (those whose tags include ``"ready"``) fail with the
        reason ``draining`` without running their checks, so load balancers
        and Kubernetes stop sending it traffic, while its liveness endpoints
        and main URL answer as before. Call it when the process starts
        shutting down, a while before it stops serving (see
        ``docs/deploying.md``). It applies to this process only.

        :param app: the app; the current app if not given.
        """
        state = get_state(app)
        if not state.draining:
            state.draining = True
            logger.info(
                "App %r is draining: its readiness endpoints fail from now on.",
                state.app.name,
            )

    def undrain(self, app: Flask | None = None) -> None:
        """Take ``app`` (or the current app) out of draining: its readiness
        endpoints run their checks again.

        :param app: the app; the current app if not given.
        """
        get_state(app).draining = False

    def is_draining(self, app: Flask | None = None) -> bool:
        """Whether ``app`` (or the current app) is draining in this process.

        :param app: the app; the current app if not given.
        """
        return get_state(app).draining

    def wait_for_signals(self, app: Flask | None = None, timeout: float = 5.0) -> bool:
        """Wait until the signals of every run so far are delivered: the one
        way to wait for signals.

        Probes never wait for subscribers: their signals are delivered on a
        thread of the app's own, in order, after the answer. A test that
        probes over HTTP and then looks at what a subscriber did calls
        ``assert health.wait_for_signals(app)`` first. :meth:`run` and
        ``flask health`` deliver their signals before they return, and
        :func:`~flask_healthcheck.testing.record_signals` waits at the end
        of its block, so neither needs it.

        :param app: the app; the current app if not given.
        :param timeout: seconds to wait at the most.
        :return: False if deliveries were still running after ``timeout``
            (a subscriber hangs), or if called from a subscriber, which
            can't wait for its own delivery.
        """
        return get_state(app).wait_for_signals(timeout)
