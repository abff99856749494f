"""The status page's stylesheet and icon, served from the app's own origin.

The page links them instead of inlining them, so an app's
``Content-Security-Policy: default-src 'self'`` (Flask-Talisman's default)
allows them; see :mod:`~flask_healthcheck.status_page`.
"""

from __future__ import annotations

from hashlib import sha256
from importlib.resources import files

#: The banner's colour for each status (and ``other`` for refusals).
COLOURS = {"pass": "#1a7f37", "warn": "#e3a008", "fail": "#cf222e", "other": "#59636e"}


def _stylesheet() -> str:
    colours = " ".join(f"--{name}: {colour};" for name, colour in COLOURS.items())
    text = files(__package__).joinpath("status.css").read_text("utf-8")
    return f":root {{ {colours} }}\n{text}"


#: ``status.css``, read once.
STYLESHEET = _stylesheet()
#: Changes with the assets, so a browser that cached them fetches new ones.
ASSET_VERSION = sha256(STYLESHEET.encode()).hexdigest()[:12]


def icon(status: str) -> str:
    """A dot of the status colour: the browser tab shows the status, and
    the browser asks the app for no ``/favicon.ico``."""
    return (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
        f"<circle cx='8' cy='8' r='7' fill='{COLOURS.get(status, COLOURS['other'])}'/>"
        "</svg>"
    )


#: Headers of the assets: the same for every client, so a browser may keep
#: them (the page links them by version). The OpenAPI document states them.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=86400",
    "X-Content-Type-Options": "nosniff",
}

#: The page's assets, served under the main URL: name to media type.
ASSETS = {"status.css": "text/css", "status.svg": "image/svg+xml"}
