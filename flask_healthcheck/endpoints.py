"""Endpoints: URLs that each run a selection of checks, chosen by tag.

The main URL runs every check; each extra endpoint (``/livez``, ``/readyz``)
runs the checks carrying any of its tags, as Kubernetes probes and Spring
Boot's health groups expect. Every endpoint also answers ``<url>/<check>``
for one check, so URLs can clash with each other and with check names:
those clashes are configuration errors found at start-up, never a request
that silently reaches the wrong checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError

#: Characters that would turn a URL into a routing pattern or a query.
_NOT_IN_URL = re.compile(r"[<>?#\s]")

#: ``<url>/history`` serves the recent results, so no check may be named so.
HISTORY = "history"
#: ``<url>/openapi.json`` describes the health URLs: a reserved name too.
OPENAPI = "openapi.json"
#: What else the main URL serves under it: the status page's stylesheet and
#: icon. Reserved check names too.
PAGE_ASSETS = ("status.css", "status.svg")
#: Every name the main URL serves under it, so no check may take it.
RESERVED_NAMES = (HISTORY, OPENAPI, *PAGE_ASSETS)


@dataclass(frozen=True)
class Endpoint:
    """A URL and the checks it runs."""

    url: str
    #: The tags that select its checks; ``None`` for the main URL (every check).
    tags: frozenset[str] | None = None
    #: Where it was configured, named in error messages.
    source: str = "add_endpoint()"


def describe(value: Any) -> str:
    """``repr(value)``, cut so an error message stays readable."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_url(what: str, value: Any) -> str:
    """A path starting with ``/``, not ending with one, with no pattern in it.

    :param what: names the setting in the error message.
    """
    if (
        isinstance(value, str)
        and value.startswith("/")
        and (value == "/" or not value.endswith("/"))
        and not _NOT_IN_URL.search(value)
    ):
        return value
    raise ConfigurationError(
        f"{what} must be a path starting with '/' and not ending with '/', without"
        f" '<', '>', '?', '#' or spaces, such as '/health', got {describe(value)}."
    )


def validate_tags(what: str, value: Any) -> frozenset[str]:
    """A non-empty list of tags: an endpoint without tags would run nothing
    and always pass, which is never what a probe wants."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (list, tuple, set, frozenset))
        or not value
        or not all(isinstance(tag, str) and tag for tag in value)
    ):
        raise ConfigurationError(
            f"{what} must be a non-empty list of tags such as ['live'],"
            f" got {describe(value)}."
        )
    return frozenset(value)


def make_endpoint(url: Any, tags: Any, source: str = "add_endpoint()") -> Endpoint:
    """Validate an extra endpoint; errors name ``source``."""
    url = validate_url(f"The URL of an endpoint in {source}", url)
    return Endpoint(url, validate_tags(f"The tags of endpoint {url!r}", tags), source)


def validate_endpoints(key: str, value: Any) -> tuple[Endpoint, ...]:
    """``HEALTHCHECK_ENDPOINTS``: a dict of URL to a list of tags."""
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"{key} must be a dict of URL paths to lists of tags, such as"
            f" {{'/livez': ['live'], '/readyz': ['ready']}}, got {describe(value)}."
        )
    return tuple(
        Endpoint(
            validate_url(f"Each URL in {key}", url),
            validate_tags(f"{key}[{url!r}]", tags),
            key,
        )
        for url, tags in value.items()
    )


def _where(endpoint: Endpoint) -> str:
    return f"{endpoint.url!r} ({endpoint.source})"


def check_url_clashes(endpoints: Sequence[Endpoint]) -> None:
    """Raise :class:`ConfigurationError` if two endpoints share a URL.

    The first endpoint is the main one, so its clash names ``HEALTHCHECK_URL``.
    """
    seen: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        other = seen.get(endpoint.url)
        if other is not None:
            raise ConfigurationError(
                f"The endpoint {_where(endpoint)} has the same URL as the endpoint"
                f" {_where(other)}; give each endpoint its own URL."
            )
        seen[endpoint.url] = endpoint


def check_reserved_name(name: str) -> None:
    """Raise :class:`ConfigurationError` if ``name`` is taken by a URL of
    the extension's own, such as ``<url>/history``."""
    if name not in RESERVED_NAMES:
        return
    if name == HISTORY:
        serves = "the recent results of every check"
    elif name == OPENAPI:
        serves = "the OpenAPI document of the health URLs"
    else:
        kind = "stylesheet" if name.endswith(".css") else "icon"
        serves = f"the status page's {kind}"
    reserved = ", ".join(map(repr, RESERVED_NAMES))
    raise ConfigurationError(
        f"A check can't be named {name!r}: '<url>/{name}' serves {serves}"
        f" (the reserved names are {reserved}). Rename it with name='...'."
    )


def check_name_clashes(endpoints: Sequence[Endpoint], names: Iterable[str]) -> None:
    """Raise :class:`ConfigurationError` if ``<url>/<check>`` is also an
    endpoint, or a name is reserved (:func:`check_reserved_name`).

    With the main URL ``/health``, an endpoint ``/health/live`` and a check
    named ``live``, the URL ``/health/live`` would mean two things.
    """
    by_url = {endpoint.url: endpoint for endpoint in endpoints}
    for name in names:
        check_reserved_name(name)
        for endpoint in endpoints:
            sub_path = endpoint.url.rstrip("/") + "/" + name
            other = by_url.get(sub_path)
            if other is not None:
                raise ConfigurationError(
                    f"The check {name!r} clashes with the endpoint {_where(other)}:"
                    f" {sub_path!r} is also the URL of that check under the endpoint"
                    f" {_where(endpoint)}. Rename the check with name='...' or move"
                    f" the endpoint."
                )
