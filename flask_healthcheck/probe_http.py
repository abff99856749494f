"""The HTTP that ``python -m flask_healthcheck.probe`` speaks: one
``GET``, HTTP/1.1, ``Connection: close``.

The standard library's ``http.client`` would double the probe's start (it
imports ``ssl`` and the ``email`` package); a health answer needs only
this much of HTTP. Every read is bounded by what is left of the probe's
time, and every part of the answer by a size.
"""

from __future__ import annotations

import socket
import time
from base64 import b64encode
from urllib.parse import SplitResult, quote, unquote

#: The most bytes of a body read: a health document is small; anything
#: bigger is not ours, and a probe must not buffer a download.
MAX_BODY = 1 << 20
#: What is asked for: the health+json document, else the envelope.
ACCEPT = "application/health+json, application/json;q=0.9"
#: The longest line (status, header, chunk size) and most headers read.
MAX_LINE, MAX_HEADERS = 8192, 100
#: What may stay unquoted in a request target (RFC 3986's pchar and "/").
_SAFE = "/%:@!$&'()*+,;=-._~"


class ProtocolError(Exception):
    """What came back is not HTTP/1.x as a server writes it."""


class _Reader:
    """Buffered reads from a socket, each bounded by what is left of the
    probe's time: a server that trickles a byte at a time can't stretch
    it."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buffer = sock, deadline, b""

    def _fill(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def line(self, limit: int = MAX_LINE) -> bytes:
        while b"\n" not in self.buffer[: limit + 2]:
            if len(self.buffer) > limit:
                raise ProtocolError("a line too long")
            if not self._fill():
                raise ProtocolError("the connection closed mid-answer")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise ProtocolError("the connection closed mid-body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def upto(self, size: int) -> bytes:
        """Until the server closes, or ``size`` bytes."""
        while len(self.buffer) < size and self._fill():
            pass
        return self.buffer[:size]


def _request_bytes(url: SplitResult, headers: dict[str, str]) -> bytes:
    target = quote(url.path or "/", safe=_SAFE)
    if url.query:
        target += "?" + quote(url.query, safe=_SAFE + "?")
    sent = {
        "Host": url.netloc.rpartition("@")[2],
        "Accept": ACCEPT,
        "User-Agent": "flask-healthcheck-probe",
        "Connection": "close",
    }
    if url.username is not None:
        credentials = f"{unquote(url.username)}:{unquote(url.password or '')}"
        sent["Authorization"] = "Basic " + b64encode(credentials.encode()).decode()
    given = {name.lower() for name in headers}
    sent = {k: v for k, v in sent.items() if k.lower() not in given}
    sent.update(headers)
    lines = [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in sent.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _headers(reader: _Reader) -> dict[str, str]:
    found: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = reader.line()
        if not line:
            return found
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise ProtocolError("a header line without a name")
        key = name.strip().lower()
        value = value.strip()
        found[key] = f"{found[key]}, {value}" if key in found else value
    raise ProtocolError("too many headers")


def _chunked(reader: _Reader) -> bytes:
    body = b""
    while len(body) <= MAX_BODY:
        size_text = reader.line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("a bad chunk size") from None
        if size == 0:
            return body
        body += reader.exactly(min(size, MAX_BODY + 1 - len(body)))
        if len(body) > MAX_BODY:
            break
        reader.exactly(2)  # the chunk's CRLF
    return body


def request(
    url: SplitResult, headers: dict[str, str], deadline: float
) -> tuple[int, dict[str, str], bytes | None]:
    """``GET`` the URL once, HTTP/1.1, without following redirects: the
    status, the headers (lower-case names) and at most :data:`MAX_BODY` + 1
    bytes of body (``None`` for a redirect, whose body is not read)."""
    host = url.hostname or ""
    https = url.scheme == "https"
    port = url.port or (443 if https else 80)
    payload = _request_bytes(url, headers)
    left = max(deadline - time.monotonic(), 0.001)
    sock = socket.create_connection((host, port), timeout=left)
    try:
        if https:
            import ssl  # only an https probe pays for it

            context = ssl.create_default_context()
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(payload)
        reader = _Reader(sock, deadline)
        while True:
            version, _, rest = reader.line().partition(b" ")
            code = rest[:3]
            well_formed = code.isdigit() and rest[3:4] in (b"", b" ")
            if not version.startswith(b"HTTP/1.") or not well_formed:
                raise ProtocolError("no HTTP status line")
            status = int(code)
            found = _headers(reader)
            if status >= 200 or status < 100:
                break  # 1xx: an interim answer, the real one follows
        if 300 <= status < 400:
            return status, found, None
        if "chunked" in found.get("transfer-encoding", "").lower():
            return status, found, _chunked(reader)
        length = found.get("content-length", "").split(",")[0].strip()
        if length.isdigit():
            if int(length) > MAX_BODY:
                return status, found, b"x" * (MAX_BODY + 1)
            return status, found, reader.exactly(int(length))
        return status, found, reader.upto(MAX_BODY + 1)
    finally:
        sock.close()
