"""Post check failures and recoveries to a chat webhook (Slack and look-alikes).

::

    from flask_healthcheck.contrib.alerts import WebhookAlerts

    alerts = WebhookAlerts(os.environ["SLACK_WEBHOOK_URL"], interval=300)
    alerts.init_app(app)

A message is posted when a check starts failing and when it recovers, not
on every failing run. Posting happens in a thread of its own, never in the
request that ran the checks, and at most once per check per ``interval``
seconds: changes in between are folded into one message about the latest
state, sent when the interval is over, so a flapping check can't flood the
channel and the channel still ends up showing the truth.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from .. import signals
from ..checks import CheckResult, Status
from ..redact import describe_exception

logger = logging.getLogger("flask_healthcheck")


@dataclass(frozen=True)
class Alert:
    """One message: the latest state of a check that changed.

    .. versionadded:: 0.1.0
    """

    #: The name of the app the check belongs to.
    app_name: str
    #: The check's name.
    check: str
    #: ``"fail"`` when it started failing, else the status it recovered to.
    status: Status
    #: The check's redacted error, or None.
    error: str | None
    #: How many changes this message stands for: more than 1 when changes
    #: were folded in while the check's interval was running.
    changes: int = 1

    @property
    def text(self) -> str:
        """The message for people: ``":red_circle: app: health check 'db' is
        failing: OperationalError: ..."``."""
        subject = f"{self.app_name}: health check {self.check!r}"
        if self.status == "fail":
            text = f":red_circle: {subject} is failing"
            if self.error:
                text += f": {self.error}"
        else:
            text = f":large_green_circle: {subject} recovered"
        if self.changes > 1:
            text += f" ({self.changes - 1} more changes since the last message)"
        return text


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack's incoming-webhook JSON, also understood by Mattermost,
    Rocket.Chat and Discord's ``/slack`` endpoint.

    .. versionadded:: 0.1.0
    """
    return {"text": alert.text}


@dataclass
class _Track:
    """What the notifier knows about one check of one app."""

    failing: bool = False
    #: ``time.monotonic()`` of the last post about this check.
    posted_at: float | None = None
    #: The latest change not posted yet.
    pending: Alert | None = None
    changes: int = 0


class WebhookAlerts:
    """Posts check failures and recoveries as JSON to ``url``, rate limited.

    :param url: the webhook URL. It is a secret for most chat services, so
        it never appears in a log line.
    :param interval: the fewest seconds between two posts about one check.
    :param timeout: seconds one post may take.
    :param payload: turns an :class:`Alert` into the JSON body; the default,
        :func:`slack_payload`, gives ``{"text": ...}``.
    :param clock: a monotonic clock in seconds, for the interval; tests
        pass one they can move by hand.
    :param app: the app to watch now; or call :meth:`init_app` later. One
        notifier may watch many apps.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = 300.0,
        timeout: float = 5.0,
        payload: Callable[[Alert], dict[str, Any]] = slack_payload,
        clock: Callable[[], float] = time.monotonic,
        app: Flask | None = None,
    ) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.payload = payload
        #: Where ``interval`` is measured, in seconds; tests pass a fake clock.
        self.clock = clock
        self._tracks: weakref.WeakKeyDictionary[Flask, dict[str, _Track]] = (
            weakref.WeakKeyDictionary()
        )
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Subscribe to ``check_failed`` and ``check_recovered`` of ``app``."""
        signals.check_failed.connect(self._on_failed, app, weak=False)
        signals.check_recovered.connect(self._on_recovered, app, weak=False)

    # -- subscribers: called in the thread that ran the checks --------------

    def _on_failed(self, app: Flask, result: CheckResult) -> None:
        self._change(app, result, failing=True)

    def _on_recovered(self, app: Flask, result: CheckResult) -> None:
        self._change(app, result, failing=False)

    def _change(self, app: Flask, result: CheckResult, *, failing: bool) -> None:
        with self._changed:
            track = self._tracks.setdefault(app, {}).setdefault(result.name, _Track())
            if track.failing == failing:
                return  # Still failing: that was said already.
            track.failing = failing
            track.changes += 1
            track.pending = Alert(
                app_name=app.name,
                check=result.name,
                status=result.status,
                error=result.error,
                changes=track.changes,
            )
            self._start()
            self._changed.notify()

    # -- the posting thread ------------------------------------------------

    def _start(self) -> None:
        """Start the posting thread unless this process runs it (after a
        fork, only the thread that forked survives)."""
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="healthcheck-webhook", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the posting thread; changes not posted yet are dropped."""
        with self._changed:
            thread, self._thread = self._thread, None
            self._changed.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + 1)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._changed:
                if self._thread is not me:
                    return
                alerts, wait = self._due(self.clock())
                if not alerts:
                    self._changed.wait(wait)
                    continue
            for alert in alerts:
                self._post(alert)

    def _due(self, now: float) -> tuple[list[Alert], float | None]:
        """Alerts to post now, and else how long until the next one is due."""
        alerts: list[Alert] = []
        wait: float | None = None
        for tracks in self._tracks.values():
            for track in tracks.values():
                if track.pending is None:
                    continue
                due = now
                if track.posted_at is not None:
                    due = track.posted_at + self.interval
                if due <= now:
                    alerts.append(track.pending)
                    track.pending, track.changes, track.posted_at = None, 0, now
                else:
                    wait = due - now if wait is None else min(wait, due - now)
        return alerts, wait

    def _post(self, alert: Alert) -> None:
        try:
            request = urllib.request.Request(
                self.url,
                data=json.dumps(self.payload(alert)).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except Exception as e:
            logger.warning(
                "Posting the health alert about check %r failed: %s",
                alert.check,
                describe_exception(e, [self.url]),
            )
