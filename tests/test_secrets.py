"""Planted secrets never leave, on any channel.

An app carries secrets the ways real apps do (config keys, nested config,
URLs, connection strings, headers, exception messages of checks, factories,
teardowns and subscribers, returned errors, observed values), and every
channel is searched for them: the three response formats with details on
and off, ``flask health`` stdout and stderr in every mode, and every record
of the ``flask_healthcheck`` logger with its traceback.

``python -m tests.test_secrets`` prints the leaks per channel (used to
measure the code before this module existed).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from flask_healthcheck import (
    CheckResult,
    HealthCheck,
    observe,
    signals,
)

ROOT = Path(__file__).resolve().parent.parent

#: Secrets kept in config, by key.
CONFIG = {
    "SECRET_KEY": "s01-secret-key-Vq3",
    "DB_PASS": "s02-db-pass-Lm8",
    "MYSQL_PWD": "s03-mysql-pwd-Zx4",
    "LDAP_PASSWD": "s04-ldap-passwd-Rt6",
    "API_CREDENTIALS": "s05-credentials-Wd5",
    "APP_AUTH": "s06-app-auth-Ux2",
}
BIND_PASSWORD = "s07-bind-pw-Kc2"
CONNECT_ARGS_PASSWORD = "s08-connect-args-Hy7"
WEBHOOK_PATH = "/services/T0001/B0002/s09webhookPath9"
REDIS_PASSWORD = "s10-redis-pw-Qa1"
BASIC = base64.b64encode(b"health:s21-basic-Hh3").decode()
PEM_BODY = "s22PemBodyIi4AAAAB3NzaC1yc2EAAAADAQABAAABAQC"

#: What each check raises (or, for a few, returns): one secret shape each.
MESSAGES = {
    # Config values quoted bare: only the config says they are secrets.
    **{
        f"config_{key.lower()}": f"login with {value} rejected"
        for key, value in CONFIG.items()
    },  # noqa: E501
    "nested_bind": f"authentication failed with {BIND_PASSWORD} for users-db",
    "nested_connect_args": f"server rejected {CONNECT_ARGS_PASSWORD}",
    "webhook_path": f"POST {WEBHOOK_PATH} answered 404",
    "redis_url": f"NOAUTH {REDIS_PASSWORD} at cache:6379",
    # Shapes in messages, secrets not in config.
    "json_escaped_quote": '{"user": "app", "password": "s11-a\\"b-json-Pp0"}',
    "passphrase": "password=correct horse s12-staple-Gg3 battery host=db",
    "url_unencoded_at": "postgresql://app:s13-at@pw-Jj2@db:5432/app refused",
    "scheme_typo": "could not parse postgresql//app:s14-typo-Nn5@db/app",
    "query_key": "GET https://maps.example.com/api?key=s15-query-key-Bb6&q=x: 403",
    "api_key": "api_key=s16-api-key-Cc7 is invalid",
    "azure": "DefaultEndpointsProtocol=https;AccountName=acct;"
    "AccountKey=s17AzureKeyDd8==;EndpointSuffix=core.windows.net",
    "cookie": "request headers: Cookie: session=s18-cookie-Ee9; theme=dark",
    "set_cookie": "Set-Cookie: sid=s19-setcookie-Ff1; Path=/; HttpOnly",
    "amz_signature": "https://b.s3.amazonaws.com/o?X-Amz-Signature=s20amzsigGg2&x=1",
    "basic": f"proxy answered 407 to Basic {BASIC}",
    "pem": "bad key: -----BEGIN RSA PRIVATE KEY-----\n"
    f"{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
    "bearer": "Authorization: Bearer s23-bearer-Jj5 was refused",
    "github_token": "clone failed for ghp_s31GithubTokenQq3abcdefghij",
}
TEARDOWN = "teardown: password=s24-teardown-Kk6"
SUBSCRIBER = "alert failed: token=s25-subscriber-Ll7"
RETURNED_ERROR = "dsn=postgresql://u:s26-result-Mm8@h/d"
RETURNED_OBSERVED = "amqp://guest:s27-observed-Nn9@mq:5672/"
OBSERVED = "token=s28-observe-Oo1"
FACTORY = "could not connect: password=s29-factory-Pp2"

#: The planted secrets by shape: none may appear on any channel.
PLANTED: dict[str, tuple[str, ...]] = {
    **{f"config {key}": (value,) for key, value in CONFIG.items()},
    "nested SQLALCHEMY_BINDS": (BIND_PASSWORD,),
    "nested connect_args.password": (CONNECT_ARGS_PASSWORD,),
    "webhook URL in config": (WEBHOOK_PATH,),
    "REDIS_URL password": (REDIS_PASSWORD,),
    "JSON password with an escaped quote": ("s11-a", "b-json-Pp0"),
    "password= passphrase with spaces": ("correct horse", "s12-staple-Gg3"),
    "URL password with an unencoded @": ("s13-at", "pw-Jj2"),
    "scheme typo postgresql//": ("s14-typo-Nn5",),
    "?key= query parameter": ("s15-query-key-Bb6",),
    "api_key=": ("s16-api-key-Cc7",),
    "Azure AccountKey=": ("s17AzureKeyDd8",),
    "Cookie header": ("s18-cookie-Ee9",),
    "Set-Cookie header": ("s19-setcookie-Ff1",),
    "X-Amz-Signature": ("s20amzsigGg2",),
    "Basic base64": (BASIC,),
    "PEM private key": (PEM_BODY,),
    "Authorization: Bearer": ("s23-bearer-Jj5",),
    "GitHub token": ("ghp_s31GithubTokenQq3",),
    "teardown exception": ("s24-teardown-Kk6",),
    "subscriber exception": ("s25-subscriber-Ll7",),
    "returned CheckResult error": ("s26-result-Mm8",),
    "returned observed_value": ("s27-observed-Nn9",),
    "observe() in a factory": ("s28-observe-Oo1",),
    "service factory exception": ("s29-factory-Pp2",),
}

#: Set by the raising subscriber once it has run.
subscriber_ran = threading.Event()


def create_app(show_details: bool = False) -> Flask:
    """The planted app (also for ``flask --app tests.test_secrets:create_app``)."""
    app = Flask("planted")
    app.config.update(
        CONFIG,
        TESTING=True,
        HEALTHCHECK_SHOW_DETAILS=show_details,
        SQLALCHEMY_BINDS={"users": f"postgresql://app:{BIND_PASSWORD}@users-db/users"},
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"password": CONNECT_ARGS_PASSWORD}},
        SLACK_WEBHOOK_URL=f"https://hooks.slack.com{WEBHOOK_PATH}",
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@cache:6379/0",
        HEALTHCHECK_SERVICES=["queue", "factory"],
    )
    health = HealthCheck(app)

    for name, message in MESSAGES.items():
        health.add_check(_raiser(message), name=name)

    @health.service("queue")
    def queue() -> Iterator[str]:
        observe(OBSERVED)
        yield "queue"
        raise RuntimeError(TEARDOWN)

    @health.service("factory")
    def factory() -> None:
        raise ConnectionError(FACTORY)

    @health.check
    def returned() -> CheckResult:
        return CheckResult(
            status="fail", error=RETURNED_ERROR, observed_value=RETURNED_OBSERVED
        )

    def alert(sender: Flask, result: CheckResult) -> None:
        subscriber_ran.set()
        raise RuntimeError(SUBSCRIBER)

    signals.check_failed.connect(alert, app, weak=False)
    return app


def _raiser(message: str) -> Any:
    def check() -> None:
        raise RuntimeError(message)

    return check


# -- channels -------------------------------------------------------------------

ACCEPT = {
    "envelope": "application/json",
    "health+json": "application/health+json",
    "html": "text/html",
}
CLI_MODES = {"table": [], "--json": ["--json"], "--verbose": ["--verbose"]}


class _Records(logging.Handler):
    """Every record of the logger, as a formatter with a traceback shows it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record) + repr(record.args))


def channels() -> dict[str, str]:
    """The text of every channel after probing the planted app."""
    logger = logging.getLogger("flask_healthcheck")
    records = _Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    found: dict[str, str] = {}
    try:
        subscriber_ran.clear()
        for details in (False, True):
            client = create_app(show_details=details).test_client()
            for name, accept in ACCEPT.items():
                response = client.get("/health", headers={"Accept": accept})
                key = f"HTTP {name}, details {'on' if details else 'off'}"
                found[key] = response.get_data(as_text=True)
        # Subscriber delivery may be asynchronous: wait for it, and its log.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            subscriber_ran.is_set() and any("subscriber" in t for t in records.texts)
        ):
            time.sleep(0.01)
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    found["log records"] = "\n".join(records.texts)
    for mode, args in CLI_MODES.items():
        stdout, stderr = run_cli(args)
        found[f"flask health {mode} stdout"] = stdout
        found[f"flask health {mode} stderr"] = stderr
    return found


def run_cli(args: list[str]) -> tuple[str, str]:
    """``flask health`` in a child process: stderr as an operator sees it,
    with Python's last-resort log handler, not pytest's capture."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flask", "--app", "tests.test_secrets:create_app"]
    done = subprocess.run(
        [*command, "health", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout, done.stderr


def _forms(secret: str) -> set[str]:
    """A secret as a channel may write it: as is, JSON-, HTML- or URL-escaped."""
    return {secret, json.dumps(secret)[1:-1], html.escape(secret), quote(secret)}


def leaks(text: str) -> list[str]:
    """The planted shapes whose secret (or a part of it) is in ``text``."""
    return [
        shape
        for shape, parts in PLANTED.items()
        if any(form in text for part in parts for form in _forms(part))
    ]


# -- the test -------------------------------------------------------------------


@pytest.fixture(scope="module")
def found() -> dict[str, str]:
    return channels()


@pytest.mark.parametrize(
    "channel",
    [
        *(f"HTTP {n}, details {d}" for d in ("off", "on") for n in ACCEPT),
        "log records",
        *(f"flask health {m} {s}" for m in CLI_MODES for s in ("stdout", "stderr")),
    ],
)
def test_no_planted_secret_leaks(found: dict[str, str], channel: str) -> None:
    assert leaks(found[channel]) == []


def test_the_channels_were_exercised(found: dict[str, str]) -> None:
    """Each channel saw the failures, so "no leak" means something."""
    assert len(PLANTED) >= 25
    assert "nested_connect_args" in found["HTTP envelope, details on"]
    assert "RuntimeError" in found["HTTP health+json, details on"]
    assert "api_key=***" in found["HTTP html, details on"]
    assert "Traceback (most recent call last)" in found["log records"]
    assert "subscriber of the" in found["log records"]
    assert "s2" not in found["HTTP envelope, details off"]
    assert "Health: fail" in found["flask health table stdout"]
    assert '"status": "fail"' in found["flask health --json stdout"]
    assert "OBSERVED" in found["flask health --verbose stdout"]
    # The log of failing checks, tracebacks included, with --verbose only.
    assert "RuntimeError" in found["flask health --verbose stderr"]
    assert "Traceback" not in found["flask health table stderr"]


if __name__ == "__main__":
    table = channels()
    for channel, text in table.items():
        shapes = leaks(text)
        print(f"{channel:36} {len(shapes):3}  {', '.join(shapes)}")


# -- service descriptions and every format -------------------------------------


SECRET = "s3cr3t-hunter2"


def test_credentials_in_the_service_description_are_redacted(app: Flask) -> None:
    app.config.update(
        HEALTHCHECK_SERVICE_ID=f"orders token={SECRET}",
        HEALTHCHECK_DESCRIPTION=f"Orders on postgres://app:{SECRET}@db/orders",
    )
    HealthCheck(app)
    client = app.test_client()
    for accept in ("application/health+json", "text/html"):
        for path in ("/health", "/health/nope"):
            body = client.get(path, headers={"Accept": accept}).text
            assert SECRET not in body, f"{path} as {accept}"


def test_secrets_stay_out_of_the_log_and_every_format(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(HEALTHCHECK_SHOW_DETAILS=True)
    health = HealthCheck(app)

    def database() -> bool:
        raise ConnectionError(f"postgresql://app:{SECRET}@db/x password={SECRET}")

    health.add_check(database)
    client = app.test_client()
    with caplog.at_level(logging.DEBUG, "flask_healthcheck"):
        for accept in ("application/json", "application/health+json", "text/html"):
            assert SECRET not in client.get("/health", headers={"Accept": accept}).text
    assert SECRET not in caplog.text
    assert SECRET not in client.get("/health/history").text
