"""Text that is safe to show: credentials never reach a client, a terminal
or a log.

Exceptions from database and HTTP clients quote connection strings, DSNs,
headers and request URLs. We keep the exception type and the message, and
blank every credential we can recognise (URL passwords, ``key=value``
pairs whose key names a secret, authorization and cookie headers, private
keys, well-known token formats), plus every secret-looking value of the
config of each app that uses the extension (which values those are, and
which apps, is :mod:`flask_healthcheck.app_secrets`' job).

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
import re
from collections.abc import Iterable
from typing import Any

from .app_secrets import MAX_SCAN as MAX_SCAN  # re-exported: the one scan bound
from .app_secrets import URL_USERINFO, is_secret_key, merge_known

MASK = "***"
#: Longest error message shown to clients; the full one goes to the log.
MAX_LENGTH = 500
#: Marks text that was cut.
ELLIPSIS = "..."

#: Cheap first test of a key in text: contains a secret part somewhere.
#: Every word of :mod:`~flask_healthcheck.secret_keys` holds one of these
#: (a test keeps it so); fewer alternatives keep the pattern fast.
_TRIGGERS = r"pass|pwd|pw|secret|token|key|cred|private|webhook|dsn|auth|cookie|sig|sas|jwt|otp|pin"  # noqa: E501


# -- patterns -------------------------------------------------------------------
#
# Python's ``re`` backtracks, so every pattern here is written so a character
# is tried a bounded number of times: a match may only start where a literal
# (``//``, ``-----BEGIN``, ``bearer``) or a token boundary is, a run of one
# character class is never followed by a run of an overlapping one, and a
# run that must be taken whole is captured in a lookahead (which Python never
# backtracks into) and then matched by back reference. Tests feed each one
# hostile input to keep it so. (The URL password pattern lives in
# ``app_secrets``, which also looks for passwords inside config URLs.)

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
    app registered with :func:`~.app_secrets.register_app_secrets` and of the current
    app. Takes time linear in ``min(len(text), limit)``.
    """
    text, cut = truncate(text, limit)
    if not text.isascii():  # a lone surrogate (a file name): UTF-8 can't encode it
        text = _SURROGATE.sub(_escape, text)
    text = _mask_literals(text, merge_known(secrets), cut)
    if "PRIVATE KEY" in text:
        text = _mask_private_keys(text)
    if "//" in text:
        text = URL_USERINFO.sub(_mask_userinfo, text)
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


def redact_line(text: str) -> str:
    """``text`` redacted, on one line: for a terminal (``flask health``) or
    a line of ``text/plain``, where a dependency's reply must neither
    recolour nor rewrite the screen nor forge a line."""
    return escape_controls(redact(text))


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
