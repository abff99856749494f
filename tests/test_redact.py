"""Redaction: the secret shapes apps carry, ordinary text untouched, linear time."""

from __future__ import annotations

import base64
import re
import time

import pytest
from flask import Flask

from flask_healthcheck.app_secrets import (
    app_secrets,
    config_secrets,
    is_secret_config_key,
    is_secret_key,
    known_secrets,
    register_app_secrets,
)
from flask_healthcheck.redact import (
    _TRIGGERS,
    MAX_LENGTH,
    describe_exception,
    escape_controls,
    redact,
)
from flask_healthcheck.secret_keys import SECRET_PARTS, SECRET_SUFFIXES

BASIC = base64.b64encode(b"user:hunter22").decode()
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7v\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:***@host/db"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("mysql+pymysql://u:p%40ss@h/d failed", "mysql+pymysql://u:***@h/d failed"),
        ("postgresql://app:p@ss@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql//app:pw@db/app", "postgresql//app:***@db/app"),
        ("password=hunter2 host=db", "password=*** host=db"),
        ("password=correct horse battery host=db", "password=*** host=db"),
        ("dbname=x user=y pwd=abc", "dbname=x user=y pwd=***"),
        ("DB_PASS=abc MYSQL_PWD=def", "DB_PASS=*** MYSQL_PWD=***"),
        ("secret='a b c' next", "secret='***' next"),
        ('{"api_key": "k-123"}', '{"api_key": "***"}'),
        ('{"password": "a\\"b", "x": 1}', '{"password": "***", "x": 1}'),
        ('{\\"password\\": \\"a\\", \\"x\\": 1}', '{\\"password\\": \\"***\\", \\"x\\": 1}'),  # noqa: E501
        ("{'auth': 'x'}", "{'auth': '***'}"),
        ("?token=abc&x=1", "?token=***&x=1"),
        ("/maps?key=AIzaXyz&q=1", "/maps?key=***&q=1"),
        ("access_token: xyz", "access_token: ***"),
        ("AccountName=a;AccountKey=ab+c==;EndpointSuffix=x", "AccountName=a;AccountKey=***;EndpointSuffix=x"),  # noqa: E501
        ("?X-Amz-Signature=abc123&X-Amz-Date=1", "?X-Amz-Signature=***&X-Amz-Date=1"),
        ("sig=abc%3D&se=2030", "sig=***&se=2030"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: ***"),
        ("header authorization=Basic dXNlcjpw", "header authorization=***"),
        ("Cookie: session=abc; theme=dark\nnext", "Cookie: ***\nnext"),
        ("Set-Cookie: sid=abc; Path=/", "Set-Cookie: ***"),
        ("got bearer abc.def", "got bearer ***"),
        (f"proxy said Basic {BASIC} no", "proxy said Basic *** no"),
        (f"key: {PEM} after", "key: ***"),
        (f"bad {PEM} after", "bad -----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY----- after"),  # noqa: E501
        ("cut -----BEGIN PRIVATE KEY-----\nMIIEow", "cut -----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----"),  # noqa: E501
        ("https://hooks.slack.com/services/T0/B0/XyZ failed", "https://hooks.slack.com/*** failed"),  # noqa: E501
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-part ok", "*** ok"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123 x", "*** x"),
        ("AKIAABCDEFGHIJKLMNOP x", "*** x"),
    ],
)  # fmt: skip
def test_redaction(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "author=Bob authority=x tokenizer=y keyboard=z passage=w",
        "author: Bob; authority: the CA",
        "key findings: the cache is cold",
        'password authentication failed for user "app"',
        "http://example.com/path?q=1&page=2",
        "could not connect to db.internal:5432 or auth.example.com:443",
        "connection to 10.0.0.7:6379 refused (errno 111)",
        "Basic authentication required",
        "user@example.com wrote to /api/users/@alice",
    ],
)
def test_ordinary_text_comes_through(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("DB_PASS", True),
        ("MYSQL_PWD", True),
        ("LDAP_PASSWD", True),
        ("API_CREDENTIALS", True),
        ("OAUTH_PRIVATE_KEY", True),
        ("SLACK_WEBHOOK_URL", True),
        ("SENTRY_DSN", True),
        ("APP_AUTH", True),
        ("X-Amz-Signature", True),
        ("AccountKey", True),
        ("clientSecret", True),
        ("authtoken", True),
        ("author", False),
        ("authority", False),
        ("tokenizer", False),
        ("keyboard", False),
        ("passage", False),
        ("monkey", False),
    ],
)
def test_secret_keys(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_every_secret_word_passes_the_cheap_first_test_of_a_key() -> None:
    """Redaction's ``key=value`` pattern looks only at keys holding one of
    its triggers, a shorter list than :mod:`~flask_healthcheck.secret_keys`'
    words: a word added there and not covered here would never be masked
    in text."""
    triggers = re.compile(_TRIGGERS)
    words = [*SECRET_PARTS, *SECRET_SUFFIXES]
    assert [word for word in words if not triggers.search(word)] == []


def test_config_keys_that_configure_a_secret_hold_none() -> None:
    assert not is_secret_config_key("SESSION_COOKIE_NAME")
    assert not is_secret_config_key("AUTH_TYPE")
    assert is_secret_config_key("REMEMBER_COOKIE_VALUE")


def test_config_secrets_at_any_depth() -> None:
    secrets = config_secrets(
        {
            "SECRET_KEY": "abcdef",
            "DATABASE_URL": "postgresql://u:p%40ssword@h/d",
            "DEBUG": True,
            "NAME": "public",
            "API_TOKEN": "x",  # too short to blank safely
            "SESSION_COOKIE_NAME": "session",
            "SQLALCHEMY_BINDS": {"users": "postgresql://u:bind-pw@h/users"},
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"password": "conn-pw"}},
            "API_KEYS": ["key-one", {"label": "key-two"}],
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/hook",
            "SENTRY_DSN": "https://dsnkey@o1.ingest.sentry.io/1",
        }
    )
    for expected in (
        "abcdef", "p%40ssword", "p@ssword", "bind-pw", "conn-pw", "key-one",
        "key-two", "/services/T0/B0/hook", "dsnkey",
    ):  # fmt: skip
        assert expected in secrets
    assert "public" not in secrets and "session" not in secrets and "x" not in secrets


def test_secrets_of_registered_apps_outside_their_context() -> None:
    app = Flask(__name__)
    app.config["DB_PASS"] = "registered-pw"
    assert "registered-pw" not in known_secrets()
    with app.app_context():
        assert redact("pw registered-pw") == "pw ***"
    register_app_secrets(app)
    assert redact("pw registered-pw") == "pw ***"


def test_app_secrets_are_cached_and_see_new_keys() -> None:
    app = Flask(__name__)
    app.config["DB_PASS"] = "first-pw"
    assert app_secrets(app) is app_secrets(app)
    app.config["OTHER_TOKEN"] = "second-tok"
    assert "second-tok" in app_secrets(app)


def test_cut_first_and_no_half_token_at_the_cut() -> None:
    token = "A" * 50
    text = redact("x " * 10 + token, limit=30)
    assert text == "x " * 10 + "..." and "AAA" not in text


def test_a_secret_with_spaces_straddling_the_cut_leaks_no_half() -> None:
    secret = "correct horse battery staple"
    text = redact("seen " + secret, [secret], limit=20)
    assert "correct" not in text and "horse" not in text


def test_describe_exception_keeps_type_and_cuts_length() -> None:
    assert describe_exception(TimeoutError()) == "TimeoutError"
    long = describe_exception(ValueError("word " * 400))
    assert long.startswith("ValueError: word word") and len(long) <= MAX_LENGTH
    assert describe_exception(ValueError("x" * 2000)) == "ValueError: ..."


def test_escape_controls() -> None:
    assert escape_controls("a\x1b[2Jb\r\x9bc\u202e") == "a\\x1b[2Jb\\x0d\\x9bc\\u202e"
    assert escape_controls("a\nb\tc", keep_newlines=True) == "a\nb\tc"


HOSTILE = {
    "base64url run": "aB3-_x9Z" * (1 << 15),
    "a-a-a-": "a-" * (1 << 17),
    "key=value chain": "password=abc " * 20000,
    "query chain": "token=a&" * 30000,
    "userinfo fragments": "://user:pw@" * 24000,
    "slashes": "/" * (1 << 18),
    "open quote": 'password="' + "a\\" * (1 << 17),
    "passphrase": "password= " + "a " * (1 << 17),
    "Basic": "basic " + "A" * (1 << 18),
    "PEM": "-----BEGIN " + "A " * (1 << 17),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_text_is_linear(name: str) -> None:
    """256 KB scanned whole (no cut) well under a second: the patterns the
    issue timed at 8.7 s for 64 KB and 16 s for 16 KB were quadratic."""
    text = HOSTILE[name]
    start = time.perf_counter()
    redact(text, limit=len(text))
    assert time.perf_counter() - start < 1.0


def test_a_megabyte_costs_milliseconds() -> None:
    text = "".join(HOSTILE.values()) * 2
    assert len(text) > 1_000_000
    start = time.perf_counter()
    redact(text)
    assert time.perf_counter() - start < 1.0
