"""The HTTP that ``python -m flask_healthcheck.probe`` speaks: one ``GET``
with the standard library's :mod:`http.client`, ``Connection: close``,
redirects not followed.

Each socket operation is bounded by what is left of the probe's time; the
probe's own thread bounds the whole (a server trickling a byte at a time).
Every part of the answer is bounded by a size.
"""

from __future__ import annotations

import http.client
import time
import zlib
from base64 import b64encode
from urllib.parse import SplitResult, quote, unquote

#: The most bytes of a body read: a health document is small; anything
#: bigger is not ours, and a probe must not buffer a download.
MAX_BODY = 1 << 20
#: What is asked for: the health+json document, else the envelope.
ACCEPT = "application/health+json, application/json;q=0.9"
#: What may stay unquoted in a request target (RFC 3986's pchar and "/").
_SAFE = "/%:@!$&'()*+,;=-._~"


class ProtocolError(Exception):
    """What came back is not HTTP/1.x as a server writes it."""


def _why(error: http.client.HTTPException) -> str:
    """What :mod:`http.client` refused, in a probe's words."""
    if isinstance(error, http.client.RemoteDisconnected):
        return "the connection closed mid-answer"
    if isinstance(error, http.client.BadStatusLine):
        return "no HTTP status line"
    if isinstance(error, http.client.LineTooLong):
        return "a line too long"
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed mid-body"
    if "headers" in str(error):  # "got more than 100 headers"
        return "too many headers"
    return type(error).__name__


def _decoded(headers: dict[str, str], body: bytes) -> bytes:
    """The body without a gzip or deflate coding a server applied although
    none was asked for; still at most :data:`MAX_BODY` + 1 bytes (a small
    bomb can't fill the memory)."""
    coding = headers.get("content-encoding", "identity").strip().lower()
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if coding != "deflate" else zlib.MAX_WBITS  # 47: gzip or zlib
        try:
            return zlib.decompressobj(wbits).decompress(body, MAX_BODY + 1)
        except zlib.error:
            raise ProtocolError(f"a body not in its {coding} coding") from None
    if coding != "identity":
        raise ProtocolError(f"a body in the {coding} coding")
    return body


def _target(url: SplitResult) -> str:
    target = quote(url.path or "/", safe=_SAFE)
    if url.query:
        target += "?" + quote(url.query, safe=_SAFE + "?")
    return target


def _request_headers(url: SplitResult, headers: dict[str, str]) -> dict[str, str]:
    """Ours, then the user's ``--header`` values over them."""
    sent = {
        "Accept": ACCEPT,
        # Without it any coding is acceptable (RFC 9110, 12.5.3).
        "Accept-Encoding": "identity",
        "User-Agent": "flask-healthcheck-probe",
        "Connection": "close",
    }
    if url.username is not None:
        credentials = f"{unquote(url.username)}:{unquote(url.password or '')}"
        sent["Authorization"] = "Basic " + b64encode(credentials.encode()).decode()
    given = {name.lower() for name in headers}
    sent = {k: v for k, v in sent.items() if k.lower() not in given}
    sent.update(headers)
    return sent


def request(
    url: SplitResult, headers: dict[str, str], deadline: float
) -> tuple[int, dict[str, str], bytes | None]:
    """``GET`` the URL once, without following redirects: the status, the
    headers (lower-case names) and at most :data:`MAX_BODY` + 1 bytes of
    body (``None`` for a redirect, whose body is not read)."""
    host = url.hostname or ""
    left = max(deadline - time.monotonic(), 0.001)
    connection: http.client.HTTPConnection
    # The port always given: without one, http.client reads "::1" as host
    # ":" and port 1.
    https = url.scheme == "https"
    port = url.port
    if port is None:
        port = http.client.HTTPS_PORT if https else http.client.HTTP_PORT
    if https:
        connection = http.client.HTTPSConnection(host, port, timeout=left)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=left)
    sent = _request_headers(url, headers)
    try:
        connection.putrequest(
            "GET",
            _target(url),
            skip_host=any(name.lower() == "host" for name in sent),
            skip_accept_encoding=True,
        )
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            response = connection.getresponse()
        except http.client.HTTPException as e:
            raise ProtocolError(_why(e)) from None
        found = {name.lower(): value for name, value in response.getheaders()}
        if 300 <= response.status < 400:
            return response.status, found, None
        if connection.sock is not None:  # the rest of the body in what is left
            connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            body = response.read(MAX_BODY + 1)
        except http.client.HTTPException as e:
            raise ProtocolError(_why(e)) from None
        if response.length:  # a Content-Length not met: the server closed early
            if len(body) <= MAX_BODY:
                raise ProtocolError("the connection closed mid-body")
        return response.status, found, _decoded(found, body)
    finally:
        connection.close()
