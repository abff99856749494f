"""Which strings are secrets: the secret values of an app's config (the
keys that hold them by :mod:`~flask_healthcheck.secret_keys`' words, less
keys that configure a secret), and the registry of apps whose config
secrets :func:`~flask_healthcheck.redact.redact` blanks everywhere.

Patterns find credentials by their shape; a password kept in config has
no shape (``hunter22``), so redaction also blanks every secret-looking
config value literally. This module finds those values (walking the config
to a bounded depth and size) and keeps a weak registry of the apps that
use the extension, so a log record or a background thread outside any app
context is still redacted with them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

from flask import Flask, current_app, has_app_context

# Re-exported: redaction and sections ask here, with the config's own rule.
from .secret_keys import is_secret_key as is_secret_key
from .secret_keys import is_secret_part, key_parts

#: Config values shorter than this are not blanked literally: they would
#: blank ordinary words everywhere.
_MIN_SECRET_LENGTH = 4
#: Seconds an app's config secrets are reused before they are looked up again.
SECRETS_REFRESH = 2.0
#: Longest text any redaction pattern looks at (``redact.MAX_SCAN``); also the
#: longest config string searched for URL passwords.
MAX_SCAN = 8192

# -- what counts as a secret key ------------------------------------------------

#: Last word parts of config keys that name a secret's *settings*, not the
#: secret (``SESSION_COOKIE_NAME``, ``JWT_COOKIE_SECURE``, ``AUTH_TYPE``).
_SETTING_PARTS = frozenset(
    {
        "name", "path", "domain", "samesite", "httponly", "secure", "type",
        "header", "headers", "location", "locations", "method", "methods",
        "algorithm", "algorithms", "field", "expires", "lifetime", "length",
        "user", "username", "login", "enabled", "required", "file", "dir",
        "timeout", "prefix", "scheme", "version",
    }
)  # fmt: skip


def is_secret_config_key(key: str) -> bool:
    """Like :func:`is_secret_key`, less keys that configure a secret rather
    than hold one (``SESSION_COOKIE_NAME``, ``AUTH_TYPE``)."""
    parts = key_parts(key)
    if not parts or parts[-1] in _SETTING_PARTS:
        return False
    return any(is_secret_part(part) for part in parts)


# -- where a URL holds its credentials ------------------------------------------

#: ``scheme://user:password@host`` and the typo ``scheme//user:password@host``:
#: the authority up to the *last* ``@`` before the path, so an unencoded ``@``
#: in the password doesn't cut the match short. Linear, as every pattern
#: of :mod:`~flask_healthcheck.redact` (which masks with it).
URL_USERINFO = re.compile(
    r"//(?P<userinfo>[^/?#@\s\"'<>\\]*(?:@[^/?#@\s\"'<>\\]*)*)@(?=[^@\s])"
)

# -- config secrets -------------------------------------------------------------

#: How deep and how many values of the config are looked at.
_MAX_DEPTH = 8
_MAX_VALUES = 10_000


def config_secrets(config: Mapping[str, Any]) -> frozenset[str]:
    """Secret strings of an app's config, to blank wherever they appear.

    Values of keys that look secret (``SECRET_KEY``, ``DB_PASS``,
    ``SLACK_WEBHOOK_URL``, ``SENTRY_DSN``), at any depth of dicts and lists
    (a nested value counts by its nearest string key, so
    ``SQLALCHEMY_ENGINE_OPTIONS["connect_args"]["password"]`` is one), the
    path of a secret URL (a webhook's path is its secret), and the password
    inside any URL anywhere in the config (``SQLALCHEMY_BINDS``).
    """
    found: set[str] = set()
    budget = [_MAX_VALUES]
    _walk(config, "", False, found, budget, 0)
    return frozenset(_variants(found))


def _walk(
    value: Any,
    key: str,
    secret: bool,
    found: set[str],
    budget: list[int],
    depth: int,
) -> None:
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_DEPTH:
        return
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return
    if isinstance(value, str):
        _collect(value, secret, found)
    elif isinstance(value, Mapping):
        for child_key, child in list(value.items()):
            if isinstance(child_key, str):
                # A value counts by its nearest string key, and everything
                # under a secret key is secret.
                child_secret = secret or (
                    is_secret_config_key(child_key) if depth == 0 else
                    is_secret_key(child_key)
                )  # fmt: skip
                _walk(child, child_key, child_secret, found, budget, depth + 1)
            else:
                _walk(child, key, secret, found, budget, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for child in list(value):
            _walk(child, key, secret, found, budget, depth + 1)


def _collect(value: str, secret: bool, found: set[str]) -> None:
    if secret and len(value) >= _MIN_SECRET_LENGTH:
        found.add(value)
    if "//" not in value:
        return
    for match in URL_USERINFO.finditer(value[:MAX_SCAN]):
        user, colon, password = match.group("userinfo").partition(":")
        if colon and len(password) >= _MIN_SECRET_LENGTH:
            found.add(password)
        elif secret and not colon and len(user) >= _MIN_SECRET_LENGTH:
            found.add(user)  # a DSN's key: https://KEY@sentry.example/1
    if secret:
        # A webhook's path and query are its secret: a message may quote
        # them without the host.
        rest = value.split("//", 1)[1]
        slash = rest.find("/")
        if slash != -1 and len(rest) - slash >= 8:
            found.add(rest[slash:])


def _variants(secrets: Iterable[str]) -> set[str]:
    """Each secret as it may be quoted: URL-encoded, decoded, JSON-escaped."""
    variants: set[str] = set()
    for secret in secrets:
        for variant in (
            secret,
            unquote(secret),
            quote(secret, safe=""),
            json.dumps(secret)[1:-1],
            repr(secret)[1:-1],
        ):
            if len(variant) >= _MIN_SECRET_LENGTH:
                variants.add(variant)
    return variants


class _Entry:
    __slots__ = ("secrets", "size", "at")

    def __init__(self, secrets: tuple[str, ...], size: int, at: float) -> None:
        self.secrets = secrets
        self.size = size
        self.at = at


_lock = threading.Lock()


def after_fork_in_child() -> None:
    """A thread of the parent may have held the lock at the fork; it is
    gone. Also called by the fork handling of ``background``, which notices
    forks that run no at-fork handler (uWSGI's)."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=after_fork_in_child)

_cache: weakref.WeakKeyDictionary[Flask, _Entry] = weakref.WeakKeyDictionary()
_apps: weakref.WeakSet[Flask] = weakref.WeakSet()


def _by_length(secrets: Iterable[str]) -> tuple[str, ...]:
    """Longest first, so a secret inside another is blanked with it."""
    return tuple(sorted(set(secrets), key=lambda s: (-len(s), s)))


def app_secrets(app: Flask) -> tuple[str, ...]:
    """The config secrets of ``app``, longest first.

    Cached: looked up again when the config gains or loses keys, or after
    :data:`SECRETS_REFRESH` seconds (a changed value is seen by then).
    """
    now = time.monotonic()
    entry = _cache.get(app)
    size = len(app.config)
    if entry is not None and entry.size == size and now - entry.at < SECRETS_REFRESH:
        return entry.secrets
    secrets = _by_length(config_secrets(app.config))
    with _lock:
        _cache[app] = _Entry(secrets, size, now)
    return secrets


def register_app_secrets(app: Flask) -> None:
    """Blank the config secrets of ``app`` in every redaction from now on,
    also outside its app context (the log filter, background threads).

    ``HealthCheck.init_app`` calls this; calling it again does nothing new.
    The app is held weakly.
    """
    with _lock:
        _apps.add(app)
    # Nothing looked up here: app_secrets() does it on first use, when a
    # redaction needs them (issue 20: init_app builds nothing a first use can).


def known_secrets() -> tuple[str, ...]:
    """The config secrets of every registered app and of the current app."""
    with _lock:
        apps = list(_apps)
    if has_app_context():
        current = current_app._get_current_object()  # type: ignore[attr-defined]
        if current not in apps:
            apps.append(current)
    if len(apps) == 1:
        return app_secrets(apps[0])
    return _by_length(secret for app in apps for secret in app_secrets(app))


def merge_known(given: Iterable[str]) -> tuple[str, ...]:
    """``given`` secrets and :func:`known_secrets`, longest first."""
    known = known_secrets()
    extra = [s for s in given if s and s not in known]
    if not extra:
        return known
    return _by_length([*known, *extra])
