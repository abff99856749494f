"""Text that is safe to show: credentials never reach a client, a terminal
or a log.

Exceptions from database and HTTP clients quote connection strings, DSNs,
headers and request URLs. We keep the exception type and the message, and
blank every credential we can recognise (URL passwords, ``key=value``
pairs whose key names a secret, authorization and cookie headers, private
keys, well-known token formats), plus every secret-looking value of the
config of each app that uses the extension.

Every channel goes through :func:`redact`: response formats, the status
page, ``flask health``, and the ``flask_healthcheck`` logger (see
:mod:`flask_healthcheck.logs`). It cuts its input to a bound *before* any
pattern runs, and every pattern is built so that each character is looked
at a bounded number of times: a hostile dependency can't make redaction
slow, however long its error message.
"""

from __future__ import annotations

import base64
import binascii
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

MASK = "***"
#: Longest error message shown to clients; the full one goes to the log.
MAX_LENGTH = 500
#: Longest text any pattern looks at. Longer text is cut first.
MAX_SCAN = 8192
#: Marks text that was cut.
ELLIPSIS = "..."

#: Config values shorter than this are not blanked literally: they would
#: blank ordinary words everywhere.
_MIN_SECRET_LENGTH = 4
#: Seconds an app's config secrets are reused before they are looked up again.
SECRETS_REFRESH = 2.0

# -- what counts as a secret key ------------------------------------------------

#: Word parts of a key that make its value a secret (``DB_PASS``,
#: ``X-Amz-Signature``, ``AccountKey``, ``client_secret``). Compared whole,
#: so ``author`` and ``tokenizer`` are not secrets.
_SECRET_PARTS = frozenset(
    {
        "pass", "passwd", "password", "passwords", "passphrase", "pwd", "pw",
        "secret", "secrets", "token", "tokens", "key", "keys", "apikey",
        "credential", "credentials", "private", "privatekey", "webhook",
        "webhooks", "dsn", "auth", "authorization", "cookie", "cookies",
        "signature", "sig", "sas", "jwt", "otp", "pin",
    }
)  # fmt: skip
#: Endings of a one-part key that make it a secret (``dbpassword``,
#: ``authtoken``, ``accesskey``).
_SECRET_SUFFIXES = (
    "password", "passwd", "secret", "token", "apikey", "accesskey",
    "secretkey", "privatekey", "credential", "credentials", "signature",
)  # fmt: skip
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
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PARTS = re.compile(r"[^A-Za-z0-9]+")
#: Cheap first test of a key in text: contains a secret part somewhere.
_TRIGGERS = r"pass|pwd|pw|secret|token|key|cred|private|webhook|dsn|auth|cookie|sig|sas|jwt|otp|pin"  # noqa: E501


def key_parts(key: str) -> list[str]:
    """``"X-Amz-Signature"`` -> ``["x", "amz", "signature"]``; camel case,
    ``_``, ``-`` and ``.`` separate parts."""
    return [part for part in _PARTS.split(_CAMEL.sub("_", key).lower()) if part]


def is_secret_key(key: str) -> bool:
    """Whether the value of ``key`` is a secret: a word part of it names one.

    ``DB_PASS``, ``MYSQL_PWD``, ``apiKey``, ``X-Amz-Signature``, ``Cookie``
    and ``auth`` are; ``author``, ``authority`` and ``tokenizer`` are not.
    """
    return any(
        part in _SECRET_PARTS or part.endswith(_SECRET_SUFFIXES)
        for part in key_parts(key)
    )


def is_secret_config_key(key: str) -> bool:
    """Like :func:`is_secret_key`, less keys that configure a secret rather
    than hold one (``SESSION_COOKIE_NAME``, ``AUTH_TYPE``)."""
    parts = key_parts(key)
    if not parts or parts[-1] in _SETTING_PARTS:
        return False
    return any(
        part in _SECRET_PARTS or part.endswith(_SECRET_SUFFIXES) for part in parts
    )


# -- patterns -------------------------------------------------------------------
#
# Python's ``re`` backtracks, so every pattern here is written so a character
# is tried a bounded number of times: a match may only start where a literal
# (``//``, ``-----BEGIN``, ``bearer``) or a token boundary is, a run of one
# character class is never followed by a run of an overlapping one, and a
# run that must be taken whole is captured in a lookahead (which Python never
# backtracks into) and then matched by back reference. Tests feed each one
# hostile input to keep it so.

#: ``scheme://user:password@host`` and the typo ``scheme//user:password@host``:
#: the authority up to the *last* ``@`` before the path, so an unencoded ``@``
#: in the password doesn't cut the match short.
_URL_USERINFO = re.compile(
    r"//(?P<userinfo>[^/?#@\s\"'<>\\]*(?:@[^/?#@\s\"'<>\\]*)*)@(?=[^@\s])"
)
#: Header lines whose whole value is a secret: cookies hold sessions, and
#: authorization may use any scheme.
_HEADER_LINE = re.compile(
    r"(?<![\w.\-])(?P<key>(?:proxy-)?authorization|(?:set-)?cookie)"
    r"(?P<sep>\\?[\"']?[ \t]*[=:][ \t]*)(?P<value>[^\r\n]*)",
    re.IGNORECASE,
)
#: ``key=value``, ``key: value``, ``"key": "value"``, ``'key' => 'value'``
#: where the key contains a secret-looking part; :func:`_mask_pair` decides.
_KEY_VALUE = re.compile(
    r"(?<![\w.\-])(?=(?P<key>[\w.\-]*?(?:" + _TRIGGERS + r")[\w.\-]*))(?P=key)"
    r"(?P<sep>\\?[\"']?[ \t]*(?:=>|[=:])[ \t]*)"
    r"(?P<value>"
    # A JSON string inside a JSON string: \"...\"
    r"\\\"(?:[^\\]|\\[^\"])*(?:\\\"|\Z)"
    # A double- or single-quoted value with backslash escapes; unterminated
    # (cut off) runs to the end of the line.
    r"|\"(?:[^\"\\\n]|\\.)*(?:\"|(?=\n)|\Z)"
    r"|'(?:[^'\\\n]|\\.)*(?:'|(?=\n)|\Z)"
    # Unquoted: up to a delimiter, and on over spaces (a passphrase) until the
    # next ``key=`` or ``key:``.
    r"|(?:[^\s,;&)\]}>\"'\\]|\\(?![\"']))+"
    r"(?:[ \t]+(?![\w.\-]+[ \t]*(?:=>|[=:]))[^\s,;&)\]}>\"'\\=]+)*"
    r")",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<key>bearer[ \t]+)(?P<value>[\w\-.~+/]+=*)", re.I)
#: ``Basic dXNlcjpwYXNz`` outside a header; masked when it decodes to
#: ``user:password``.
_BASIC = re.compile(r"\b(?P<key>basic[ \t]+)(?P<value>[A-Za-z0-9+/]{6,}={0,2})", re.I)
_PRIVATE_KEY_BEGIN = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?-----"
)
_PRIVATE_KEY_END = re.compile(r"-----END [A-Z0-9 ]{0,60}-----")
#: Tokens whose format gives them away wherever they appear.
_KNOWN_TOKENS = re.compile(
    r"\beyJ[\w\-]{8,}\.[\w\-]{8,}\.[\w\-]*"  # a JWT
    r"|\b(?:gh[pousr]_|github_pat_)\w{20,}"  # GitHub
    r"|\bxox[abprs]-[\w\-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # an AWS access key id
    r"|\b[sr]k_(?:live|test)_\w{10,}"  # Stripe
    r"|\bAIza[\w\-]{30,}"  # Google API key
)
#: Webhook URLs whose path is the secret.
_WEBHOOK = re.compile(r"(?P<key>hooks\.slack\.com/|/api/webhooks/)[^\s\"'<>]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match.group("userinfo")
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"//{user}:{MASK}@"
    if len(userinfo) >= 16:  # a token used as the user name
        return f"//{MASK}@"
    return match.group(0)


def _mask_line(match: re.Match[str]) -> str:
    return f"{match.group('key')}{match.group('sep')}{MASK}"


def _mask_pair(match: re.Match[str]) -> str:
    key, sep, value = match.group("key", "sep", "value")
    if not is_secret_key(key):
        return match.group(0)
    if sep == ":" and "." in key and value.split(None, 1)[0].isdigit():
        return match.group(0)  # auth.example.com:443, a host and its port
    for quote_ in ('\\"', '"', "'"):
        if value.startswith(quote_):
            end = quote_ if value.endswith(quote_) and len(value) > len(quote_) else ""
            return f"{key}{sep}{quote_}{MASK}{end}"
    return f"{key}{sep}{MASK}"


def _mask_value(match: re.Match[str]) -> str:
    return f"{match.group('key')}{MASK}"


def _mask_basic(match: re.Match[str]) -> str:
    value = match.group("value")
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return match.group(0)
    if ":" in text and text.isprintable():
        return f"{match.group('key')}{MASK}"
    return match.group(0)


def _mask_private_keys(text: str) -> str:
    """PEM private-key blocks, whole; a block cut off runs to the end."""
    parts = []
    position = 0
    while (begin := _PRIVATE_KEY_BEGIN.search(text, position)) is not None:
        end = _PRIVATE_KEY_END.search(text, begin.end())
        parts.append(text[position : begin.start()])
        parts.append(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----")
        position = len(text) if end is None else end.end()
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


def _mask_literals(text: str, secrets: Iterable[str], cut: bool) -> str:
    """Blank each secret; in text that was cut, also a secret's beginning
    at the very end, so a secret straddling the cut leaks no half."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if cut:
        for secret in secrets:
            start = max(0, len(text) - len(secret) + 1)
            while (i := text.find(secret[0], start)) != -1:
                if len(text) - i >= 3 and secret.startswith(text[i:]):
                    text = text[:i] + MASK
                    break
                start = i + 1
    return text


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters, and whether it was.

    A token cut in the middle is dropped whole: half a token may be half a
    secret that no pattern recognises any more.
    """
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    if not text[limit].isspace():
        space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        head = head[: space + 1]
    return head, True


def redact(
    text: str,
    secrets: Iterable[str] = (),
    *,
    limit: int = MAX_SCAN,
) -> str:
    """Blank credentials in ``text``; cut it to ``limit`` characters first.
    Lone surrogates, which no response or log can encode, become escapes.

    ``secrets`` are blanked literally, as are the config secrets of every
    app registered with :func:`register_app_secrets` and of the current
    app. Takes time linear in ``min(len(text), limit)``.
    """
    text, cut = truncate(text, limit)
    if not text.isascii():  # a lone surrogate (a file name): UTF-8 can't encode it
        text = _SURROGATE.sub(_escape, text)
    text = _mask_literals(text, _merge(secrets, known_secrets()), cut)
    if "PRIVATE KEY" in text:
        text = _mask_private_keys(text)
    if "//" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _HEADER_LINE.sub(_mask_line, text)
    text = _KEY_VALUE.sub(_mask_pair, text)
    text = _BEARER.sub(_mask_value, text)
    text = _BASIC.sub(_mask_basic, text)
    text = _KNOWN_TOKENS.sub(MASK, text)
    if "hooks" in text:
        text = _WEBHOOK.sub(rf"\g<key>{MASK}", text)
    return text + ELLIPSIS if cut else text


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """Show control characters as ``\\x1b``-style escapes, so text from a
    dependency can't move the cursor, recolour or retitle a terminal, or
    forge log lines. ``keep_newlines`` keeps newlines and tabs (tracebacks)."""
    pattern = _CONTROL if keep_newlines else _CONTROL_ALL
    return pattern.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def describe_exception(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``"TypeName: message"`` with credentials blanked, cut to a safe length."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    # Cut before anything looks at the whole message; then one line.
    message = _WHITESPACE.sub(" ", message[: MAX_LENGTH * 4]).strip()
    text = type(exc).__name__ + (f": {message}" if message else "")
    text = redact(text, secrets, limit=MAX_LENGTH)
    if len(text) > MAX_LENGTH:
        text = text[: MAX_LENGTH - len(ELLIPSIS)] + ELLIPSIS
    return text


def redact_value(value: Any) -> Any:
    """An observed value fit to show: text (and anything shown as text)
    redacted, numbers and None as they are."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    return redact(text, limit=MAX_LENGTH)


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
    for match in _URL_USERINFO.finditer(value[:MAX_SCAN]):
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
    app_secrets(app)


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


def _merge(given: Iterable[str], known: tuple[str, ...]) -> tuple[str, ...]:
    extra = [s for s in given if s and s not in known]
    if not extra:
        return known
    return _by_length([*known, *extra])
