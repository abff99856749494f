"""What a renderer may use besides the report: one type, the same for
every format, so whether details show is decided once, by the view.

It lives apart from :mod:`~flask_healthcheck.formats`, which lists the
renderers, so that the renderers it imports (plain text, and OpenMetrics
and the feeds on first use) take this type without importing their list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .history import Snapshot


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may use besides the report."""

    #: Whether per-check results may be shown (``HEALTHCHECK_SHOW_DETAILS``).
    details: bool
    #: The app's settings: service identity, the HTML refresh interval.
    settings: Settings
    #: The ``component_type`` of each check that has one, by check name
    #: (health+json's ``componentType``; results don't carry it).
    component_types: Mapping[str, str] = field(default_factory=dict)
    #: The recent past, for a Format with ``history=True`` (the status
    #: page, the feeds); None for the others.
    history: Snapshot | None = None
    #: Where the status page's stylesheet and icon are served: the main
    #: URL with the app's script root, without a trailing slash.
    assets: str = ""
    #: The sections (``health.add_section``) by name, evaluated and
    #: redacted: set by the view only with details, for a Format with
    #: ``sections=True``.
    sections: Mapping[str, Any] = field(default_factory=dict)
