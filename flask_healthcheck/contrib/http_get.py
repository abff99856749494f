"""``http(url)``: a factory for a service that GETs a URL, standard library only.

Register it under any name; the service check (or any check asking for
the service) fails when the server can't be reached, does not answer in
time or answers an unexpected status::

    health = HealthCheck(app, services=["search"])
    health.add_service("search", http("http://127.0.0.1:9200/_cluster/health"))

    @health.check
    def search_is_green(search):
        return search.json()["status"] == "green"
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit, urlunsplit

from ..config import validate_timeout
from ..errors import ConfigurationError
from ..services import observe
from ._support import milliseconds, network_timeout

#: The most bytes of a body that are read: enough for a status document.
MAX_BODY = 1024 * 1024

#: The statuses that pass unless ``expect_status`` says otherwise.
DEFAULT_STATUSES = range(200, 400)


class HTTPStatusError(Exception):
    """The server answered, with a status the check does not accept.

    .. versionadded:: 0.1.0
    """


@dataclass(frozen=True)
class HTTPResult:
    """What the server answered; the value of an :func:`http` service.

    .. versionadded:: 0.1.0
    """

    #: The URL without credentials or query string, safe to show.
    url: str
    status: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)
    #: The body, cut at :data:`MAX_BODY` bytes.
    body: bytes = field(repr=False)
    #: Seconds from sending the request to reading the body.
    elapsed: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer: the server is up. Following it would check
    another URL, possibly on another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _expected_statuses(expect_status: int | Iterable[int] | None) -> frozenset[int]:
    if expect_status is None:
        return frozenset(DEFAULT_STATUSES)
    statuses = (
        (expect_status,) if isinstance(expect_status, int) else tuple(expect_status)
    )
    if not statuses or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599
        for s in statuses
    ):
        raise ConfigurationError(
            "expect_status of http() must be an HTTP status code or a list of"
            f" them, such as 200 or [200, 204], got {expect_status!r}."
        )
    return frozenset(statuses)


def _describe_statuses(statuses: frozenset[int]) -> str:
    if statuses == frozenset(DEFAULT_STATUSES):
        return "2xx or 3xx"
    return " or ".join(str(s) for s in sorted(statuses))


def http(
    url: str,
    *,
    expect_status: int | Iterable[int] | None = None,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[Any], HTTPResult]:
    """A service factory that GETs ``url`` and gives an :class:`HTTPResult`.

    Redirects are not followed: a 3xx passes by default. The response time
    is the observed value, in ms.

    :param url: an ``http`` or ``https`` URL. A user and password in it are
        sent as Basic authentication and never appear in errors; neither
        does the query string.
    :param expect_status: the status, or statuses, that pass. Default: any
        2xx or 3xx.
    :param timeout: seconds to wait for the server. It is lowered to stay
        below the check's own timeout, which is also the default.
    :param headers: more request headers, such as an ``Authorization``.

    .. versionadded:: 0.1.0
    """
    parts = urlsplit(url)
    # Not quoted in the messages: the URL may hold a password or a token.
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            "http() needs an http:// or https:// URL with a host, such as"
            " 'http://127.0.0.1:9200/_cluster/health'."
        )
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigurationError(
            "The URL given to http() contains spaces or control characters;"
            " quote them, such as %20 for a space."
        )
    if timeout is not None:
        timeout = validate_timeout("timeout of http()", timeout)
    statuses = _expected_statuses(expect_status)
    host = parts.netloc.rpartition("@")[2]
    target = urlunsplit((parts.scheme, host, parts.path or "/", parts.query, ""))
    safe_url = urlunsplit((parts.scheme, host, parts.path or "/", "", ""))
    request_headers = {"User-Agent": "flask-healthcheck", **(headers or {})}
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        request_headers["Authorization"] = "Basic " + base64.b64encode(
            credentials.encode()
        ).decode("ascii")

    def factory(config: Any) -> HTTPResult:
        seconds = network_timeout(config, timeout)
        request = urllib.request.Request(target, headers=request_headers)
        start = time.perf_counter()
        try:
            with _opener.open(request, timeout=seconds) as response:
                body = response.read(MAX_BODY)
                status, reason = response.status, response.reason
                answer_headers = dict(response.headers.items())
        except HTTPError as e:
            with e:
                body = e.read(MAX_BODY)
            status, reason = e.code, e.reason
            answer_headers = dict(e.headers.items())
        except (OSError, HTTPException) as e:
            cause = e.reason if isinstance(e, URLError) else e
            if isinstance(cause, TimeoutError):
                raise TimeoutError(
                    f"GET {safe_url}: no answer within {seconds:.3g} s"
                ) from None
            raise ConnectionError(f"GET {safe_url} failed: {cause}") from None
        elapsed = time.perf_counter() - start
        observe(milliseconds(elapsed), "ms")
        if status not in statuses:
            raise HTTPStatusError(
                f"GET {safe_url} answered {status} {reason},"
                f" expected {_describe_statuses(statuses)}"
            )
        return HTTPResult(safe_url, status, reason, answer_headers, body, elapsed)

    factory.__qualname__ = factory.__name__ = f"http({safe_url!r})"
    return factory
