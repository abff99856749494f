"""``cursor_backend`` / ``sqlalchemy``: a live database connection.

The engine is made once per app and URL (pooled, ``pool_pre_ping``); each
run takes a connection, runs ``SELECT 1`` and gives it back.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from flask import Flask

_engines: weakref.WeakKeyDictionary[Flask, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def database_url(config: Any) -> str:
    url = config.get("SQLALCHEMY_DATABASE_URI") or config.get("DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database configured: set SQLALCHEMY_DATABASE_URI or DATABASE_URL"
        )
    return str(url)


def _engine(app: Flask, url: str) -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise RuntimeError(
            "SQLAlchemy is not installed: install flask-healthchecks[sqlalchemy]"
        ) from None
    with _lock:
        engines = _engines.setdefault(app, {})
        if url not in engines:
            engines[url] = sqlalchemy.create_engine(url, pool_pre_ping=True)
        return engines[url]


def cursor_backend(app: Flask, config: Any) -> Iterator[Any]:
    """A connection that has just answered ``SELECT 1``."""
    import sqlalchemy

    engine = _engine(app, database_url(config))
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT 1"))
        yield connection
