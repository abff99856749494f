"""Error messages that are safe to show: credentials never reach a client.

Exceptions from database and HTTP clients quote connection strings, DSNs
and headers. We keep the exception type and the message, and blank every
credential we can recognise, plus every secret-looking value of the app's
own config (``SECRET_KEY``, passwords inside ``DATABASE_URL``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "***"
#: Longest error message shown; the full one goes to the log.
MAX_LENGTH = 500

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s]*@")
_SECRET_WORDS = (
    r"password|passwd|pwd|secret|client_secret|token|access_token|"
    r"refresh_token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|"
    r"credentials?|auth"
)
_KEY_VALUE = re.compile(
    rf"""(?P<key>\b[\w\-]*(?:{_SECRET_WORDS})[\w\-]*["']?\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&)\]}]+)""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(
    r"(?P<key>\b(?:proxy-)?authorization\s*[:=]\s*)(?P<value>(?:\w+\s+)?[^\s,;]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(
    r"(?P<key>\bbearer\s+)(?P<value>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE
)
_SECRET_CONFIG_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|^KEY$|CREDENTIAL", re.I)
_MIN_SECRET_LENGTH = 4


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('key')}{quote}{MASK}{quote}"


def config_secrets(config: Mapping[str, Any]) -> frozenset[str]:
    """Secret strings of an app's config, to blank wherever they appear.

    Values of keys that look secret (``SECRET_KEY``, ``*_PASSWORD``,
    ``*_TOKEN``) and the passwords inside any URL-valued key.
    """
    secrets: set[str] = set()
    for key, value in config.items():
        if not isinstance(value, str):
            continue
        if _SECRET_CONFIG_KEY.search(key) and len(value) >= _MIN_SECRET_LENGTH:
            secrets.add(value)
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                continue
            if password and len(password) >= _MIN_SECRET_LENGTH:
                secrets.update({password, unquote(password)})
    return frozenset(secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Blank credentials in ``text``; ``secrets`` are blanked literally."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}@", text)
    text = _AUTH_HEADER.sub(_mask_value, text)
    text = _BEARER.sub(_mask_value, text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return text


def describe_exception(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``"TypeName: message"`` with credentials blanked, cut to a safe length."""
    message = " ".join(str(exc).split())
    text = type(exc).__name__ + (f": {message}" if message else "")
    text = redact(text, secrets)
    if len(text) > MAX_LENGTH:
        text = text[: MAX_LENGTH - 3] + "..."
    return text
