"""The one format registry: every format the health URLs answer in, the
built-in ones (:data:`~flask_healthcheck.formats.FORMATS`) and those added
with :meth:`HealthCheck.add_format <flask_healthcheck.HealthCheck.add_format>`,
and which of them answers a request.

What is the same for every format is decided here once: ``Accept`` with
its q-values, ``?format=<name>`` overriding it, the clearskies envelope for a
client that asks for nothing in particular, and what happens when a
renderer raises (the envelope, never a 500). A format only renders; the
view adds ``Cache-Control: no-store``, ``Vary: Accept`` and the status code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping

from flask import Response
from werkzeug.datastructures import MIMEAccept
from werkzeug.wrappers import Request

from .checks import CheckResult, HealthReport
from .endpoints import describe
from .errors import ConfigurationError
from .formats import FORMATS, Format, RenderContext
from .formats import HEADERS as HEADERS  # the formats' headers start with them

logger = logging.getLogger("flask_healthcheck")

#: Media types answered in another one's format: a browser that asks only
#: for XHTML gets the status page, served as ``text/html``.
ALIASES = {"application/xhtml+xml": "text/html"}

#: The query argument that names a format, overriding ``Accept``.
FORMAT_ARG = "format"

#: What ``add_format`` takes: ``render(report, details)``, the body as
#: text (sent as UTF-8) or bytes (sent as they are).
UserRender = Callable[[HealthReport, bool], "str | bytes"]

# RFC 6838's restricted names, lower case (media types are case-insensitive).
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MIMETYPE = re.compile(rf"{_TOKEN}/{_TOKEN}\Z")
_NAME = re.compile(r"[A-Za-z0-9.+-]+\Z")


#: How many different ``Accept`` headers a registry remembers its answer to.
MAX_ACCEPT_HEADERS = 64
#: The longest ``Accept`` header remembered (a browser's or Prometheus's is
#: a few hundred characters): longer ones, an attacker's, are kept by nobody.
MAX_ACCEPT_LENGTH = 1024


class FormatRegistry:
    """Formats by media type, in order: the first one answers ``*/*``, a
    missing or malformed ``Accept`` and one that matches nothing.

    Immutable: :meth:`with_formats` makes the registry of one app from the
    built-in one and the formats added to it.
    """

    def __init__(self, formats: Iterable[Format]) -> None:
        #: Every format by media type, the default first.
        self.formats: dict[str, Format] = {f.mimetype: f for f in formats}
        #: Every format that has a ``?format=`` name, by that name.
        self.names: dict[str, Format] = {
            f.name: f for f in self.formats.values() if f.name
        }
        #: What answers a client that asks for nothing in particular.
        self.default = next(iter(self.formats.values()))
        # An alias stands in for its format unless it is a format itself.
        self._aliases = {
            alias: self.formats[target]
            for alias, target in ALIASES.items()
            if alias not in self.formats and target in self.formats
        }
        self._offered = [*self.formats, *self._aliases]
        #: What each ``Accept`` header seen so far was answered with: a
        #: client sends the same one every time, and parsing and matching
        #: it costs more than the rest of a cached probe's negotiation.
        self._by_accept: dict[str | None, Format] = {}

    def with_formats(self, added: Iterable[Format]) -> FormatRegistry:
        """This registry with ``added``: one with a registered media type
        takes that format's place (and the default's, for the first); the
        others come after, in the order given."""
        formats = dict(self.formats)
        for format in added:
            formats[format.mimetype] = format
        return FormatRegistry(formats.values())

    def choose(self, request: Request) -> Format | None:
        """The format to answer ``request`` in: the one ``?format=`` names,
        else the one ``Accept`` prefers. None for a ``?format=`` that names
        no format (an empty one is ignored).

        ``?format=health+json`` as typed reaches us as ``health json`` (a
        ``+`` in a query is a space); no name has a space, so it is read
        as the ``+`` it was meant to be.
        """
        name = request.args.get(FORMAT_ARG)
        if name:
            return self.names.get(name.replace(" ", "+"))
        return self.negotiate(request)

    def negotiate(self, request: Request) -> Format:
        """The format ``Accept`` prefers, by its q-values.

        The default, listed first, wins for ``*/*`` and ties, and is the
        answer to a missing, malformed or unmatched ``Accept``: clients that
        never asked for a format keep getting clearskies' bytes. Media type
        parameters (``version=1.0.0``) are not matched: a format has one
        version.
        """
        header = request.headers.get("Accept")
        chosen = self._by_accept.get(header)
        if chosen is None:
            chosen = self._best_match(request.accept_mimetypes)
            if len(self._by_accept) < MAX_ACCEPT_HEADERS and (  # odd clients
                header is None or len(header) <= MAX_ACCEPT_LENGTH
            ):
                self._by_accept[header] = chosen
        return chosen

    def _best_match(self, accept: MIMEAccept) -> Format:
        if any(";" in value for value, _ in accept):
            # Werkzeug matches parameters too: Prometheus's
            # ``application/openmetrics-text;version=1.0.0`` would match nothing.
            accept = MIMEAccept([(v.partition(";")[0].strip(), q) for v, q in accept])
        best = accept.best_match(self._offered)
        if best is None:
            return self.default
        return self.formats.get(best) or self._aliases[best]

    def unknown_format(self, request: Request) -> dict[str, str]:
        """``input_errors`` for the ``?format=`` that :meth:`choose` refused."""
        value = request.args.get(FORMAT_ARG, "")
        return {
            FORMAT_ARG: f"unknown format {describe(value)}; one of:"
            f" {', '.join(self.names)}"
        }


#: The built-in formats; the clearskies envelope first.
BUILT_IN = FormatRegistry(FORMATS.values())

#: What a failed renderer's answer falls back to: the clearskies envelope,
#: whoever took ``application/json`` over.
ENVELOPE = BUILT_IN.default


def user_format(mimetype: str, render: UserRender, name: str | None = None) -> Format:
    """The :class:`~flask_healthcheck.formats.Format` that ``add_format``
    registers; raises :class:`ConfigurationError` naming a bad argument.

    ``name`` defaults to the name of the built-in format of that media type
    (which the new one replaces), else to the subtype (``text/csv``:
    ``csv``). A refusal (4xx) is rendered as a failing report with one
    failing result per input error, with details: it holds nothing but the
    request's own mistake.
    """
    if not isinstance(mimetype, str) or not _MIMETYPE.match(mimetype.lower()):
        raise ConfigurationError(
            f"add_format(mimetype=...) must be a media type 'type/subtype' without"
            f" parameters or wildcards, such as 'text/csv', got {describe(mimetype)}."
        )
    mimetype = mimetype.lower()
    if not callable(render):
        raise ConfigurationError(
            f"add_format(render=...) must be a function render(report, details)"
            f" returning str or bytes, got {describe(render)}."
        )
    if name is None:
        replaced = BUILT_IN.formats.get(mimetype)
        name = replaced.name if replaced else mimetype.partition("/")[2]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"add_format(name=...) is the ?format= name: letters, digits, '.', '+'"
            f" and '-', such as 'csv', got {describe(name)} (for {mimetype!r})."
        )

    def render_report(report: HealthReport, context: RenderContext) -> str | bytes:
        return render(report, context.details)

    def render_error(
        code: int, errors: Mapping[str, str], context: RenderContext
    ) -> str | bytes:
        return render(refusal_report(errors), True)

    return Format(mimetype, render_report, render_error, name=name)


def check_format_clashes(format: Format, added: Iterable[Format]) -> None:
    """Raise :class:`ConfigurationError` if ``format`` takes a media type or
    a name another added format has, or the name of a built-in format it
    does not replace."""
    for other in added:
        if format.mimetype == other.mimetype or format.name == other.name:
            raise ConfigurationError(
                f"add_format({format.mimetype!r}, name={format.name!r}): a format"
                f" with the media type {other.mimetype!r} and the name"
                f" {other.name!r} was added already; each media type and name"
                f" can be added once."
            )
    built_in = BUILT_IN.names.get(format.name)
    if built_in is not None and built_in.mimetype != format.mimetype:
        raise ConfigurationError(
            f"add_format({format.mimetype!r}, name={format.name!r}): the name"
            f" {format.name!r} is the built-in {built_in.mimetype!r}'s; pass"
            f" another name=, not one of: {', '.join(BUILT_IN.names)}."
        )


def refusal_report(errors: Mapping[str, str]) -> HealthReport:
    """A refused request as a report: a failing result per input error,
    named after the field (``exclude``), the message as its error."""
    return HealthReport.from_results(
        [
            CheckResult(name=field, status="fail", error=message)
            for field, message in errors.items()
        ]
    )


def render_safely(format: Format, render: Callable[[], object]) -> bytes | None:
    """What ``render()`` gives, as bytes; None (logged, with the traceback)
    if it raised anything, ``SystemExit`` included, or gave neither text
    nor bytes: the caller answers with the envelope instead of a 500."""
    try:
        body = render()
        if isinstance(body, str):
            return body.encode()  # here, so that a lone surrogate is caught too
    except BaseException:  # a SystemExit in a renderer must not reach the server
        logger.exception(
            "The renderer of %s (?format=%s) raised; answered with the envelope.",
            format.mimetype,
            format.name,
        )
        return None
    if isinstance(body, bytes):
        return body
    logger.error(
        "The renderer of %s (?format=%s) returned %s, not str or bytes; answered"
        " with the envelope.",
        format.mimetype,
        format.name,
        type(body).__name__,
    )
    return None


def answer(
    chosen: Format,
    render: Callable[[], object],
    fallback: Callable[[], str],
    status: int,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The response in ``chosen``'s format: ``render()``'s body, with
    :data:`HEADERS`, the format's own and ``headers``. If the renderer
    fails (:func:`render_safely`), ``fallback()``'s envelope, same status."""
    body = render_safely(chosen, render)
    if body is None:
        chosen, body = ENVELOPE, fallback().encode()
    if not headers:  # every answer but a 405's: the format's, worked out once
        return Response(body, status=status, headers=chosen.response_headers)
    return Response(
        body,
        status=status,
        mimetype=chosen.mimetype,
        content_type=chosen.content_type or None,
        headers={**HEADERS, **chosen.headers, **(headers or {})},
    )
