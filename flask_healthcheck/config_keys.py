"""Every ``HEALTHCHECK_*`` key, once: its default, what the environment
gives it, what it means and an example. ``config.DEFAULTS`` is made from
:data:`KEYS`, and docs/configuration.md's table is generated from it
(``UPDATE_DOCS=1 pytest tests/test_env_config.py`` rewrites the table;
without it the test fails when they differ), so the keys can't drift apart.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def default_run_dir() -> str:
    """``HEALTHCHECK_RUN_DIR``'s default: a directory of the user's own in
    the temp dir, so servers of two users on one host never meet there.
    Made when the default is read (:attr:`Key.compute`), not at import:
    finding the temp dir tries files on disk, and a ``TMPDIR`` set after
    the import must count."""
    user = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    return os.path.join(tempfile.gettempdir(), f"flask-healthcheck-{user}")


@dataclass(frozen=True)
class Key:
    """One config key, as ``init_app`` sets its default and the docs list it."""

    #: The config key.
    name: str
    #: Its default as written here (see :attr:`default`).
    value: Any
    #: What an environment variable holds for it (Markdown).
    type: str
    #: What it does, in a line (Markdown, MyST roles allowed).
    meaning: str
    #: A value of ``FLASK_<name>`` as a shell would set it.
    env: str
    #: The default as the docs show it, where its ``repr`` won't do.
    shown: str | None = None
    #: Makes the default each time it is read, in place of :attr:`value`,
    #: for a default that depends on the machine (the temp dir).
    compute: Callable[[], Any] | None = None

    @property
    def default(self) -> Any:
        """Its default, set with ``app.config.setdefault`` in ``init_app``."""
        return self.value if self.compute is None else self.compute()


#: Every key ``init_app`` reads, in the order the docs list them.
KEYS: tuple[Key, ...] = (
    Key(
        "HEALTHCHECK_URL",
        "/health",
        type="path",
        meaning="path of the endpoint",
        env="/status",
    ),
    Key(
        "HEALTHCHECK_SERVICES",
        [],
        type="JSON list of names or objects",
        meaning=(
            "service names to build on every run, each a check; an entry may be "
            '`{"name": ..., "tags": [...], "timeout": ..., "critical": ...}`'
        ),
        env="'[\"memory_backend\"]'",
    ),
    Key(
        "HEALTHCHECK_CALLABLE",
        None,
        type="import string",
        meaning=(
            'one more check: a function or an import string (`"myapp.health:check"`)'
        ),
        env="myapp.health:check",
    ),
    Key(
        "HEALTHCHECK_TIMEOUT",
        10.0,
        type="number",
        meaning="default per-check timeout, seconds",
        env="2.5",
    ),
    Key(
        "HEALTHCHECK_CACHE_TTL",
        0.0,
        type="number",
        meaning="seconds each check's latest result is reused, by every URL",
        env="5",
    ),
    Key(
        "HEALTHCHECK_SHOW_DETAILS",
        False,
        type="`true` or `false` (a function: in code)",
        meaning="`False`, `True`, or a function `(request) -> bool`",
        env="false",
    ),
    Key(
        "HEALTHCHECK_FAILURE_STATUS",
        500,
        type="whole number",
        meaning="HTTP status of a failing report",
        env="503",
    ),
    Key(
        "HEALTHCHECK_WARN_STATUS",
        200,
        type="whole number",
        meaning="HTTP status of a report that warns",
        env="200",
    ),
    Key(
        "HEALTHCHECK_INTERVAL",
        0.0,
        type="number",
        meaning=(
            "seconds between background runs; 0 turns them off. The refresh starts"
            " with the app's first request, or `health.start(app)`; in a `TESTING`"
            " app only `health.start(app)` starts it (see {doc}`testing`)"
        ),
        env="15",
    ),
    Key(
        "HEALTHCHECK_ENDPOINTS",
        {},
        type="JSON object",
        meaning=(
            "more URLs, each running the checks with any of its tags:"
            ' `{"/livez": ["live"]}`'
        ),
        env='\'{"/livez": ["live"], "/readyz": ["ready"]}\'',
    ),
    Key(
        "HEALTHCHECK_SERVICE_ID",
        None,
        type="text",
        meaning="health+json `serviceId`",
        env="orders-api",
    ),
    Key(
        "HEALTHCHECK_VERSION",
        None,
        type="text",
        meaning=(
            "health+json `version` (the service's public version); also shown on the "
            "status page"
        ),
        env="1.4.2",
    ),
    Key(
        "HEALTHCHECK_RELEASE_ID",
        None,
        type="text",
        meaning=(
            "health+json `releaseId` (the release deployed); also shown on the"
            " status page"
        ),
        env="20250501",
    ),
    Key(
        "HEALTHCHECK_DESCRIPTION",
        None,
        type="text",
        meaning="health+json `description`; also shown on the status page",
        env="'Order taking and payment'",
    ),
    Key(
        "HEALTHCHECK_HTML_REFRESH",
        10,
        type="whole number",
        meaning="seconds between reloads of the status page; 0 turns them off",
        env="30",
    ),
    Key(
        "HEALTHCHECK_RUN_APP_HOOKS",
        False,
        type="`true` / `false`",
        meaning=(
            "run the app's `before_request` hooks and `url_value_preprocessor`"
            " functions for the health URLs too; by default they are answered"
            " first, so a login redirect, an HTTPS redirect or a rate limit never"
            " answers a probe; with `true` a WARNING names each hook answer once"
            " per URL and status; see {doc}`extensions`"
        ),
        env="true",
    ),
    Key(
        "HEALTHCHECK_RUN_DIR",
        None,
        type="absolute path, or `null` for no election",
        meaning=(
            "where the worker processes of one host elect the one that refreshes (a "
            "lock file); see {doc}`deploying`"
        ),
        env="/run/myapp",
        shown="<temp dir>/flask-healthcheck-<uid>",
        compute=default_run_dir,
    ),
    Key(
        "HEALTHCHECK_THREADS",
        True,
        type="`true` or `false`",
        meaning=(
            "`True` runs each check on a thread of its own (concurrently, timeouts "
            "enforced); `False` runs them on the request thread one after another, "
            "timeouts reported, not enforced; see [below](#checks-without-threads)"
        ),
        env="false",
    ),
)
