"""Quiet probes: a filter that drops successful health probes from a
server's access log, as flask-healthz's ``no_log`` does for its own.

Kubernetes probes every pod every few seconds; each probe is an access-log
line that says nothing. :class:`ProbeAccessLogFilter` drops the lines of
``GET`` and ``HEAD`` requests to the health URLs that were answered 2xx and
keeps everything else, failing probes included. It reads the records of
Werkzeug's development server (the ``werkzeug`` logger) and of gunicorn
(the ``gunicorn.access`` logger); records of any other shape pass.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

#: Colours Werkzeug's development server puts around a request line.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ProbeAccessLogFilter(logging.Filter):
    """Drops access-log records of successful health probes.

    Put it on the server's access logger (a filter on the logger, so it
    survives the server replacing its handlers)::

        logging.getLogger("werkzeug").addFilter(
            ProbeAccessLogFilter(paths=["/health", "/livez", "/readyz"])
        )

    It also works from a ``logging.config.dictConfig`` dict, as
    ``{"()": "flask_healthcheck.ProbeAccessLogFilter", "paths": [...]}``.

    :param paths: the health URLs. A path matches itself and the URLs under
        it (``/health/database``); the query string does not count.
    :param methods: the methods of probes; a ``POST`` to a health URL is
        never a probe and stays in the log.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        paths: Iterable[str] = ("/health",),
        *,
        methods: Iterable[str] = ("GET", "HEAD"),
    ) -> None:
        super().__init__()
        if isinstance(paths, str):
            paths = [paths]
        #: The health URLs, without a trailing slash.
        self.paths = tuple(path.rstrip("/") or "/" for path in paths)
        #: The methods of a probe, upper case.
        self.methods = frozenset(method.upper() for method in methods)

    def filter(self, record: logging.LogRecord) -> bool:
        request = access_of(record)
        if request is None:
            return True
        method, path, status = request
        probe = method in self.methods and self._is_health_path(path)
        return not (probe and status.startswith("2"))

    def _is_health_path(self, path: str) -> bool:
        return any(
            path == url or (url != "/" and path.startswith(url + "/"))
            for url in self.paths
        )


def access_of(record: logging.LogRecord) -> tuple[str, str, str] | None:
    """The method, path and status of an access-log record, if it is one.

    gunicorn logs its access line with a mapping of atoms (``m`` the
    method, ``U`` the path, ``s`` the status); Werkzeug with the request
    line, the status and the size.
    """
    args = record.args
    if isinstance(args, Mapping):
        if not all(key in args for key in ("m", "U", "s")):
            return None
        return str(args["m"]), str(args["U"]), str(args["s"])
    if record.name == "werkzeug" and isinstance(args, tuple) and len(args) == 3:
        parts = _ANSI.sub("", str(args[0])).split(" ")
        if len(parts) < 2:
            return None
        return parts[0], parts[1].split("?", 1)[0], str(args[1])
    return None
