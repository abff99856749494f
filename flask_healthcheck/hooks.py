"""Probes first: the health URLs answered before the app's own hooks.

An app's ``before_request`` hooks were written for its pages: a login
redirect, an HTTPS redirect, a rate limit, a database session. On a health
URL they turn a probe's answer into someone else's: ``302 /login`` (which a
kubelet counts as success), a 429 from the sixth probe on, the app's 500
while the database is down.

Flask runs those hooks, the app's ``url_value_preprocessor`` functions
before them, in :meth:`~flask.Flask.preprocess_request`. So ``init_app``
wraps that method of the one app it sets up (an attribute of the app
object, as ``app.wsgi_app`` is wrapped for WSGI middleware and as
Flask-CORS wraps ``app.handle_exception``; Flask's class and other apps are
untouched). Every request first runs what the extension must do on any
request (start the background refresh), so no hook of the app can keep it
from happening. Then, with ``HEALTHCHECK_RUN_APP_HOOKS`` False (the
default), a request for a health URL is the extension's alone, whatever
order the app and its extensions registered their hooks in, before or
after ``init_app``; any other request runs the app's hooks as always.
``after_request`` and teardown functions run for every request, health
URLs included.

With ``HEALTHCHECK_RUN_APP_HOOKS`` True the app's hooks run first; when one
of them answers a health URL (or raises), a WARNING says so once per URL
and status.

:func:`is_health_request` lets an app's own code (an ``after_request``
hook, or a ``before_request`` hook when the app's hooks run) tell the
extension's requests from the app's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask, Request, current_app, has_request_context, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from .state import EXTENSION_KEY, HealthCheckState
from .views import BLUEPRINT_NAME, answer_routing_error, health_url

logger = logging.getLogger("flask_healthcheck")

#: Distinct answers warned about per app at the most, so that a client
#: varying URLs can't grow the set.
MAX_WARNINGS = 100

Preprocess = Callable[[], "ResponseReturnValue | None"]


def is_health_request() -> bool:
    """Whether the current request is for one of the extension's URLs.

    True for the main URL, the extra endpoints, per-check URLs,
    ``<url>/history``, ``<url>/openapi.json``, the status page's
    stylesheet, and the errors under them (a refused method, a trailing
    slash, an unknown check); False for the app's own routes, outside a
    request, and in an app the extension is not set up on. Use it in an
    app's ``after_request`` hook, or in its ``before_request`` hooks with
    ``HEALTHCHECK_RUN_APP_HOOKS = True``::

        @app.before_request
        def require_login():
            if is_health_request():
                return None
            ...

    .. versionadded:: 0.1.0
    """
    if not has_request_context():
        return False
    current = request._get_current_object()  # type: ignore[attr-defined]
    return _for_health(current_app.extensions.get(EXTENSION_KEY), current)


#: The start of the extension's endpoint names.
_PREFIX = f"{BLUEPRINT_NAME}."


def _for_health(state: object, current: Request) -> bool:
    """:func:`is_health_request` for the request ``current`` of an app
    whose ``app.extensions[EXTENSION_KEY]`` is ``state``."""
    if not isinstance(state, HealthCheckState):
        return False
    rule = current.url_rule
    if rule is not None:
        endpoint: str = rule.endpoint
        return endpoint.startswith(_PREFIX)
    if current.routing_exception is None:
        return False
    return health_url(state.endpoints(), current.path) is not None


class ProbesFirst:
    """The app's ``preprocess_request``, with health URLs answered first.

    :param app: the app it is set up on.
    :param preprocess: the app's own method, bound.
    :param own_hooks: what the extension does first on every request,
        before any hook of the app could answer it (the refresher's start).
    :param run_app_hooks: ``HEALTHCHECK_RUN_APP_HOOKS``.
    """

    def __init__(
        self,
        app: Flask,
        preprocess: Preprocess,
        own_hooks: list[Callable[[], None]],
        *,
        run_app_hooks: bool,
    ) -> None:
        self.app = app
        self.preprocess = preprocess
        self.own_hooks = own_hooks
        self.run_app_hooks = run_app_hooks
        self._warned: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def __call__(self) -> ResponseReturnValue | None:
        for hook in self.own_hooks:
            hook()
        # is_health_request(), without looking up the app and the request
        # through Flask's proxies at each step: it is this app's request.
        current = request._get_current_object()  # type: ignore[attr-defined]
        if not _for_health(self.app.extensions.get(EXTENSION_KEY), current):
            return self.preprocess()
        if self.run_app_hooks:
            try:
                answer = self.preprocess()
            except HTTPException as e:  # Flask-Limiter raises its 429
                self._warn(e.code or 500, f"raised {type(e).__name__}")
                raise
            except Exception as e:
                self._warn(500, f"raised {type(e).__name__}")
                raise
            if answer is not None:
                response = current_app.make_response(answer)
                self._warn(response.status_code, "answered")
                return response
        return answer_routing_error(current)

    def _warn(self, status: int, what: str) -> None:
        url = health_url(
            current_app.extensions[EXTENSION_KEY].endpoints(), request.path
        )
        key = (url or request.path, status)
        with self._lock:
            if key in self._warned or len(self._warned) >= MAX_WARNINGS:
                return
            self._warned.add(key)
        logger.warning(
            "A before_request hook of the app %s the health URL %s with %d instead"
            " of the health check: a probe now reads the app's answer, and a"
            " kubelet counts a 302 as success whatever the checks say. Skip"
            " health URLs in the hook (flask_healthcheck.is_health_request()), or"
            " set HEALTHCHECK_RUN_APP_HOOKS = False to answer them before the"
            " app's hooks.",
            what,
            request.path,
            status,
        )


def put_probes_first(
    app: Flask, own_hooks: list[Callable[[], None]], *, run_app_hooks: bool
) -> None:
    """Wrap ``app.preprocess_request`` in :class:`ProbesFirst`."""
    app.preprocess_request = ProbesFirst(  # type: ignore[method-assign]
        app, app.preprocess_request, own_hooks, run_app_hooks=run_app_hooks
    )
