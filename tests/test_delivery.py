"""Signal delivery: off the probe's thread, in order, and never able to stall
the background refresher.

Subscribers of an HTTP probe's signals are called on another thread after
the probe answered: what they saw is polled for with a deadline.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from typing import Any

import pytest
from blinker import NamedSignal
from flask import Flask
from flask.testing import FlaskClient

from flask_healthcheck import CheckResult, HealthCheck, HealthReport
from flask_healthcheck.signals import (
    check_failed,
    check_recovered,
    health_checked,
)

from .helpers import Bounded, Switch, bounded, wait_for

#: The checks' timeout in these tests, seconds.
TIMEOUT = 0.3
#: What a probe may take beyond its checks' timeout on a busy machine.
MARGIN = 1.0


def probe(app: Flask, path: str = "/health") -> int:
    return bounded(
        lambda: FlaskClient(app).get(path).status_code, TIMEOUT + MARGIN, "the probe"
    )


# -- the background refresher -------------------------------------------------


class Stuck(BaseException):
    """A subscriber's escape that isn't an ``Exception``."""


def hang(release: threading.Event) -> Any:
    def subscriber(sender: Flask, **kwargs: Any) -> None:
        release.wait()

    return subscriber


def raise_base_exception(release: threading.Event) -> Any:
    def subscriber(sender: Flask, **kwargs: Any) -> None:
        raise Stuck

    return subscriber


def only_in_outage(subscriber: Any) -> Any:
    """Behave while the report passes; misbehave once it fails."""

    def during_outage(sender: Flask, report: HealthReport) -> None:
        if report.status == "fail":
            subscriber(sender, report=report)

    return during_outage


@pytest.mark.parametrize(
    ("signal", "misbehave"),
    [
        (check_failed, hang),
        (check_failed, raise_base_exception),
        (health_checked, hang),
        (health_checked, raise_base_exception),
    ],
    ids=[
        "check_failed-hangs",
        "check_failed-raises",
        "checked-hangs",
        "checked-raises",
    ],
)
def test_a_misbehaving_subscriber_never_leaves_a_stale_success(
    app: Flask,
    release: threading.Event,
    signal: NamedSignal,
    misbehave: Any,
) -> None:
    """Issue 8, defect 5: a subscriber that hung (or raised a BaseException)
    on the refresher's thread stopped it, and the endpoint answered the last
    200 through the whole outage."""
    interval = 0.2
    app.config.update(HEALTHCHECK_INTERVAL=interval, HEALTHCHECK_TIMEOUT=TIMEOUT)
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    subscriber = misbehave(release)
    if signal is health_checked:
        subscriber = only_in_outage(subscriber)
    health.start(app)  # a TESTING app's requests don't start it
    with signal.connected_to(subscriber, app):
        assert probe(app) == 200
        database.ok = False
        outage = time.monotonic()
        # Two intervals (the latest run is too old) plus a run of its own.
        wait_for(
            lambda: probe(app) == 500,
            2 * interval + TIMEOUT + MARGIN,
            "the endpoint kept answering 200 through the outage",
        )
        noticed = time.monotonic() - outage
        for _ in range(10):  # and it goes on saying so
            assert probe(app) == 500
            time.sleep(interval / 4)
    assert noticed < 2 * interval + TIMEOUT + MARGIN


def test_the_refresher_starts_on_any_first_request(app: Flask) -> None:
    """Issue 8, defect 9: it started only on a health request, so an app
    whose health URL nobody probes never sent its signals."""
    # A served app: requests start the refresh of apps without TESTING.
    app.config.update(TESTING=False, HEALTHCHECK_RUN_DIR=None)
    app.config["HEALTHCHECK_INTERVAL"] = 0.05
    health = HealthCheck(app)
    health.add_check(lambda: True, name="database")
    app.add_url_rule("/", "index", lambda: "user traffic")
    reports: list[HealthReport] = []
    with health_checked.connected_to(
        lambda sender, report: reports.append(report), app
    ):
        assert app.test_client().get("/").text == "user traffic"
        wait_for(
            lambda: len(reports) >= 3,
            3,
            "no background run after a request to a plain route",
        )


# -- probes don't wait for subscribers ----------------------------------------


def test_a_slow_subscriber_never_delays_the_probe(app: Flask) -> None:
    """Issue 8, defect 6: subscribers ran on the probe's thread, so one that
    took a second added a second to every probe."""
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    delay = 1.0
    alerted: list[str] = []

    def slow_webhook(sender: Flask, result: CheckResult) -> None:
        time.sleep(delay)
        alerted.append(result.name)

    with check_failed.connected_to(slow_webhook, app):
        start = time.perf_counter()
        assert probe(app) == 500
        assert time.perf_counter() - start < delay / 2
        wait_for(lambda: alerted == ["database"], delay + MARGIN + 3)


def test_a_hanging_subscriber_never_hangs_a_probe(
    app: Flask, release: threading.Event
) -> None:
    """Issue 8, defect 6: with a hanging subscriber, every failing probe hung."""
    health = HealthCheck(app)
    health.add_check(lambda: False, name="database")
    with check_failed.connected_to(hang(release), app):
        for _ in range(5):
            start = time.perf_counter()
            assert probe(app) == 500
            assert time.perf_counter() - start < 0.5


# -- order ------------------------------------------------------------------------


class Alerts:
    """What a subscriber that alerts on failures and recoveries last said
    about each check; slow to say it, as a webhook is."""

    def __init__(self, failed_delay: float = 0.0, jitter: float = 0.0) -> None:
        self.said: list[tuple[str, str]] = []
        self.failed_delay = failed_delay
        self.jitter = jitter
        self.delivering = threading.Event()
        self._lock = threading.Lock()

    def _say(self, what: str, result: CheckResult, delay: float) -> None:
        self.delivering.set()
        time.sleep(delay + random.uniform(0, self.jitter))
        with self._lock:
            self.said.append((result.name, what))

    def on_failed(self, sender: Flask, result: CheckResult) -> None:
        self._say("failing", result, self.failed_delay)

    def on_recovered(self, sender: Flask, result: CheckResult) -> None:
        self._say("recovered", result, 0.0)

    def about(self, name: str) -> list[str]:
        with self._lock:
            return [what for check, what in self.said if check == name]


def test_a_recovery_is_never_followed_by_an_older_failure(app: Flask) -> None:
    """Issue 8, defect 7: the failure of one probe was delivered after the
    recovery that a later probe saw, leaving "failing" as the last word.

    The first probe's run fails, and its (slow) ``check_failed`` delivery
    starts; the check recovers and a second probe runs it again while that
    delivery is still going on."""
    health = HealthCheck(app)
    database = Switch()
    health.add_check(database, name="database")
    alerts = Alerts(failed_delay=0.3)
    with (
        check_failed.connected_to(alerts.on_failed, app),
        check_recovered.connected_to(alerts.on_recovered, app),
    ):
        database.ok = False
        first = Bounded(lambda: app.test_client().get("/health").status_code)
        assert alerts.delivering.wait(5), "check_failed was not sent"
        database.ok = True
        assert probe(app) == 200
        assert first.result(5, "the first probe") == 500
        wait_for(lambda: len(alerts.about("database")) >= 2, 5)
        time.sleep(0.3 + 0.2)  # anything late would be in by now
        assert alerts.about("database") == ["failing", "recovered"]


def test_signals_settle_on_the_latest_status_under_concurrent_probes(
    app: Flask,
) -> None:
    """Issue 8, defect 7, as a storm: many rounds of concurrent probes on
    several URLs of one check that flips from failing to passing."""
    app.config["HEALTHCHECK_ENDPOINTS"] = {"/readyz": ["ready"]}
    health = HealthCheck(app)
    lock = threading.Lock()
    runs = {"left_failing": 0}

    def database() -> bool:
        time.sleep(random.uniform(0, 0.002))
        with lock:  # the outcome is decided as the check ends
            runs["left_failing"] -= 1
            return runs["left_failing"] < 0

    health.add_check(database, name="database", tags=["ready"])
    health.add_check(lambda: True, name="cache")
    urls = ["/health", "/readyz", "/health/database", "/health?exclude=cache"]
    for number in range(10):
        alerts = Alerts(jitter=0.01)
        with (
            check_failed.connected_to(alerts.on_failed, app),
            check_recovered.connected_to(alerts.on_recovered, app),
        ):
            with lock:
                runs["left_failing"] = 3
            storm(app, urls * 3, probes=4)
            # However many runs the storm took, the check passes from now on.
            wait_for(lambda: probe(app) == 200, 5)
            wait_for(
                lambda: alerts.about("database")[-1:] == ["recovered"],  # noqa: B023
                5,
                f"round {number + 1}: the last word on the recovered check"
                " stayed 'failing'",
            )
            time.sleep(0.1)  # anything late would be in by now
            said = alerts.about("database")
            assert said[-1] == "recovered", f"round {number + 1}: {said}"
            assert said.count("recovered") == 1, f"round {number + 1}: {said}"


def storm(app: Flask, urls: list[str], probes: int) -> None:
    """A thread per URL, all starting at once, each probing ``probes`` times."""
    barrier = threading.Barrier(len(urls))

    def run(url: str) -> None:
        barrier.wait(5)
        client = app.test_client()
        for _ in range(probes):
            client.get(url)

    threads = [Bounded(functools.partial(run, url)) for url in urls]
    for thread in threads:
        thread.result(10, "a probe")
