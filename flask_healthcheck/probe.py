"""``python -m flask_healthcheck.probe URL``: ask a running server.

A Docker ``HEALTHCHECK`` or a Kubernetes exec probe runs its command every
few seconds, for the life of the container. ``flask health`` imports the
whole app each time (half a second of CPU for the example app); this asks
the server that is already running, with the standard library alone: it
imports neither Flask, nor Werkzeug, nor the app, nor any module of this
package but two that need nothing else (its HTTP client and the words of
secret keys).

Exit status 0 for pass or warn, 1 for fail, 2 when there is no health
answer to be had: the server can't be reached (refused, unknown host, no
answer in time) or what answers is not the extension (a redirect to a
login page, an HTML page, another app's 404, JSON of another shape, a body
too big to be a health document). One line on stdout says which::

    pass 200 http://127.0.0.1:8000/readyz 3 ms
    fail 503 http://127.0.0.1:8000/readyz 12 ms: database
    error - http://127.0.0.1:8000/readyz 1 ms: connection refused

A password in the URL is sent (HTTP basic auth) and printed as ``***``, as
is a query value whose key names a secret (by the package's one rule,
:mod:`~flask_healthcheck.secret_keys`); header values are sent and never
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import time
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from .probe_http import MAX_BODY, ProtocolError, request
from .secret_keys import is_secret_key

#: Exit statuses, as ``flask health`` has them.
EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
#: Seconds the whole probe may take (connect, TLS, request and answer).
DEFAULT_TIMEOUT = 5.0
#: The clearskies envelope's keys and its statuses.
ENVELOPE_KEYS = frozenset({"status", "error", "data", "pagination", "input_errors"})
ENVELOPE_STATUS = {"success": "pass", "failure": "fail"}
#: The extension's own answers that are not a run of checks: a bad query,
#: an unknown check name, a method not allowed. The probe is set up wrong.
NOT_A_RUN = frozenset({400, 404, 405})
#: A check's statuses that make it named on the line.
BAD = frozenset({"warn", "fail"})
#: The longest server-given text printed (check names, a Location).
MAX_SHOWN = 200


class Outcome:
    """What the probe found, for its one line."""

    def __init__(self, verdict: str, status: int | None = None, reason: str = ""):
        #: pass, warn, fail or error.
        self.verdict = verdict
        #: The HTTP status, None without an answer.
        self.status = status
        #: Why, when there is a why.
        self.reason = reason

    @property
    def exit_code(self) -> int:
        return {"pass": EXIT_PASS, "warn": EXIT_PASS, "fail": EXIT_FAIL}.get(
            self.verdict, EXIT_ERROR
        )


def shown(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` on one line, control characters as escapes, cut to
    ``limit``: a server can't rewrite the terminal or flood the log."""
    out = "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text[: limit + 1]
    )
    return out if len(out) <= limit else out[:limit] + "..."


def public_url(url: SplitResult) -> str:
    """The URL as printed: no password, no secret-looking query value."""
    netloc = url.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if url.port is not None:
        netloc = f"{netloc}:{url.port}"
    if url.username is not None:
        password = ":***" if url.password is not None else ""
        netloc = f"{url.username}{password}@{netloc}"
    query = url.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if is_secret_key(k) else v) for k, v in pairs],
            safe="*",
        )
    return shown(url._replace(netloc=netloc, query=query, fragment="").geturl(), 400)


def parse_url(text: str) -> SplitResult:
    """An ``http``/``https`` URL with a host, or ``ValueError``."""
    url = urlsplit(text)
    if url.scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if not url.hostname:
        raise ValueError("the URL has no host")
    url.port  # noqa: B018 -- raises ValueError for a bad port
    if not url.netloc.isascii():
        raise ValueError("write the host in ASCII (an IDN in its xn-- form)")
    return url


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` as argparse's type: a bad header is a usage error."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError("a header is NAME:VALUE, e.g. X-Token:abc")
    if any(c in value for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"the value of {name} has a line break")
    try:
        (name + value).encode("latin-1")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{name}: not Latin-1 text") from None
    return name, value


def judge(status: int, headers: dict[str, str], body: bytes | None) -> Outcome:
    """Whether the answer is the extension's, and what it says."""
    if body is None:
        location = headers.get("location", "")
        where = f" to {shown(_without_secrets(location))}" if location else ""
        return Outcome(
            "error",
            status,
            f"a redirect{where}, not a health answer (redirects are not followed)",
        )
    if len(body) > MAX_BODY:
        return Outcome(
            "error", status, f"a body over {MAX_BODY} bytes, not a health answer"
        )
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return Outcome(
            "error",
            status,
            f"{shown(media_type or 'no content type')}, not a health answer",
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError; [[[[...
        return Outcome("error", status, "invalid JSON, not a health answer")
    verdict = _status_of(document)
    if verdict is None:
        return Outcome("error", status, "JSON of another shape, not a health answer")
    if verdict == "fail" and status in NOT_A_RUN:
        output = document.get("output") or document.get("error") or ""
        said = f": {shown(output)}" if isinstance(output, str) and output else ""
        return Outcome("error", status, f"not a run of checks{said}")
    if not _fits(verdict, status):
        return Outcome(
            "error", status, f"{verdict!r} with status {status}, not a health answer"
        )
    return Outcome(verdict, status, _failing(document, verdict))


def _without_secrets(location: str) -> str:
    """A redirect's target without its credentials and query."""
    try:
        target = urlsplit(location)
        port = f":{target.port}" if target.port else ""
    except ValueError:
        return "?"
    origin = f"{target.scheme}://{target.hostname}{port}" if target.netloc else ""
    return origin + target.path


def _status_of(document: object) -> str | None:
    """pass, warn or fail, from a health+json document or the envelope."""
    if not isinstance(document, dict):
        return None
    status = document.get("status")
    if ENVELOPE_KEYS <= document.keys():
        return ENVELOPE_STATUS.get(status) if isinstance(status, str) else None
    checks = document.get("checks", {})
    if status in ("pass", "warn", "fail") and isinstance(checks, dict):
        return str(status)
    return None


def _fits(verdict: str, status: int) -> bool:
    """Whether the status code is one the extension gives for the verdict:
    pass is 2xx, warn is ``HEALTHCHECK_WARN_STATUS`` (200 to 599), fail is
    ``HEALTHCHECK_FAILURE_STATUS`` (400 to 599; 500 unless set)."""
    if verdict == "pass":
        return 200 <= status < 300
    if verdict == "warn":
        return 200 <= status < 600
    return 400 <= status < 600


def _failing(document: dict[str, object], verdict: str) -> str:
    """The checks that don't pass, when the server shows them (a warn is a
    non-critical check that fails, or one that warns)."""
    if verdict == "pass":
        return ""
    checks = document.get("checks")
    if not isinstance(checks, dict):
        data = document.get("data")
        inner = data.get("checks") if isinstance(data, dict) else None
        checks = inner if isinstance(inner, dict) else {}
    names = []
    for name, value in checks.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(i, dict) and i.get("status") in BAD for i in items):
            names.append(str(name))
    return shown(", ".join(names))


def probe(url: SplitResult, headers: dict[str, str], timeout: float) -> Outcome:
    """Ask once; every way of getting no health answer is an ``error``."""
    try:
        status, found, body = request(url, headers, time.monotonic() + timeout)
    except TimeoutError:
        return Outcome("error", None, f"no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return Outcome("error", None, "connection refused")
    except socket.gaierror as e:
        return Outcome("error", None, f"unknown host ({shown(str(e.strerror))})")
    except ProtocolError as e:
        return Outcome("error", None, f"not an HTTP answer ({e})")
    except OSError as e:  # reset, unreachable, TLS (ssl.SSLError is an OSError)
        return Outcome("error", None, shown(str(e) or type(e).__name__))
    return judge(status, found, body)


def line(outcome: Outcome, url: SplitResult, seconds: float) -> str:
    """``pass 200 http://host/readyz 3 ms``, and why when there is a why."""
    status = "-" if outcome.status is None else str(outcome.status)
    text = f"{outcome.verdict} {status} {public_url(url)} {seconds * 1000:.0f} ms"
    return f"{text}: {outcome.reason}" if outcome.reason else text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flask_healthcheck.probe",
        description="Ask a running server's health endpoint (for Docker HEALTHCHECK"
        " and Kubernetes exec probes). Exit 0 for pass or warn, 1 for fail, 2 when"
        " the server can't be reached or what answers is not a health endpoint of"
        " flask-healthcheck. Redirects are not followed: a redirect (to a login"
        " page, to https) is exit 2. HTTPS certificates are verified against the"
        " system's CAs (SSL_CERT_FILE names others).",
    )
    p.add_argument("url", help="the health URL, e.g. http://127.0.0.1:8000/readyz")
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help="seconds for the whole probe, connect to last byte"
        f" (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--header",
        "-H",
        action="append",
        type=parse_header,
        default=[],
        metavar="NAME:VALUE",
        help="a request header, e.g. X-Health-Token:abc (repeatable; never printed)",
    )
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be seconds above 0, got {text!r}")
    return value


def say(text: str) -> None:
    """Print the line; a closed or ASCII-only stdout must not turn the exit
    status into a traceback's 1 (which reads as "fail")."""
    try:
        sys.stdout.write(text.encode("ascii", "backslashreplace").decode() + "\n")
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: no stdout
        pass


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        url = parse_url(args.url)
    except ValueError as e:
        p.error(str(e))  # exit 2 with the usage
    headers = dict(args.header)
    start = time.monotonic()
    done: list[Outcome] = []

    # The socket timeout bounds each step; the thread bounds the whole (a
    # name lookup, or a server that trickles a byte at a time).
    def ask() -> None:
        try:
            done.append(probe(url, headers, args.timeout))
        except Exception as e:  # a bug here is still one line and exit 2
            done.append(Outcome("error", None, shown(f"{type(e).__name__}: {e}")))

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(args.timeout)
    outcome = (
        done[0]
        if done
        else Outcome("error", None, f"no answer within {args.timeout:g} s")
    )
    say(line(outcome, url, time.monotonic() - start))
    if worker.is_alive():  # don't wait on it at exit, whatever it is stuck in
        os._exit(outcome.exit_code)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
