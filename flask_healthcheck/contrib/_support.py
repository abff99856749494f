"""What the ready-made services share: optional imports and timeouts."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ..services import time_left

#: The share of the check's time left that one network call may take. The
#: call gives up by itself before the check times out, so its thread is
#: free again and the error says what went wrong (refused, timed out
#: reading, bad password) instead of only "timed out".
SHARE = 0.8
#: Seconds left at least for the work around the call (building a client,
#: a thread switch on a busy machine), which matters for short timeouts.
MARGIN = 0.1
#: Seconds a call gets even when the check has almost no time left.
MINIMUM = 0.05


def network_timeout(config: Mapping[str, Any], limit: float | None = None) -> float:
    """Seconds a network call made now may take: below the check's timeout.

    :param config: the app's config; outside a health run (a factory called
        by app code) ``HEALTHCHECK_TIMEOUT`` stands for the check's timeout.
    :param limit: a timeout the user asked for, kept if it is shorter.
    """
    left = time_left()
    if left is None:
        left = float(config.get("HEALTHCHECK_TIMEOUT", 10.0))
    seconds = max(min(left * SHARE, left - MARGIN), MINIMUM)
    return seconds if limit is None else min(seconds, limit)


def milliseconds(seconds: float) -> float:
    """A latency for :func:`~flask_healthcheck.observe`, in ``"ms"``."""
    return round(seconds * 1000, 3)


def optional_import(module: str, extra: str, name: str | None = None) -> Any:
    """Import ``module``, or fail with the extra that installs it.

    Imported when a check runs, not when the package is: an app that does
    not use a service needs none of its libraries.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise RuntimeError(
            f"{name or module} is not installed: install flask-healthchecks[{extra}]"
        ) from None
