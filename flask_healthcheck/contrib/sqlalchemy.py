"""``cursor_backend`` / ``sqlalchemy``: a live database connection.

Where the engine comes from, in order:

1. Flask-SQLAlchemy, when it is initialised on the app: its ``db.engine``,
   so the check uses the pool and options the app itself uses.
2. Otherwise an engine made once per app and URL from
   ``SQLALCHEMY_DATABASE_URI`` or ``DATABASE_URL``, with ``pool_pre_ping``
   so a pooled connection that died with a database restart is replaced
   instead of failing the check.

Each run takes a connection, runs ``SELECT 1`` (``FROM DUAL`` where the
dialect needs it), reports that round trip in milliseconds with
:func:`~flask_healthcheck.observe` and gives the connection back after the
check. Connecting is bounded below the check's timeout: while a health
check connects, the driver's connect timeout (and on our own engine its
read timeout, where the driver has one) is lowered to fit the time left.

A health check never creates the database it checks: SQLite would make an
empty file for a path that does not exist (``sqlite:///app.db`` before the
app created its database), and the check would pass. While a health check
connects, a missing SQLite file fails it with the path, and the file is
opened with ``mode=rw``; in-memory databases (``sqlite://``) still pass.

In a forked child (a pre-fork server's worker), every engine of the app,
ours and Flask-SQLAlchemy's, gets a new, empty pool before anything of the
app runs there, with ``dispose(close=False)``, as SQLAlchemy advises for
forks: a connection made in the parent stays the parent's, open, and is
never used by the child, so no two processes share one socket and read
each other's answers.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from ..forks import on_fork
from ..services import observe, time_left
from ._support import milliseconds, network_timeout, optional_import

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect, Engine
    from sqlalchemy.pool import Pool

_engines: weakref.WeakKeyDictionary[Flask, dict[str, Engine]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()
#: The pools a forked child inherited, kept: a driver that closes a
#: connection when it is collected (sending the server a goodbye on the
#: socket) would end the parent's session.
_inherited_pools: list[Pool] = []

#: Config keys naming the database, in the order they are looked up.
URL_KEYS = ("SQLALCHEMY_DATABASE_URI", "DATABASE_URL")


def database_url(config: Mapping[str, Any]) -> str:
    """The URL to connect to, from ``SQLALCHEMY_DATABASE_URI`` or ``DATABASE_URL``."""
    return _configured_url(config)[1]


def _configured_url(config: Mapping[str, Any]) -> tuple[str, str]:
    """The config key naming the database, and the URL.

    ``DATABASE_URL`` is a convention shared with other tools, where
    ``postgres://`` is common; SQLAlchemy only knows ``postgresql://``.
    """
    for key in URL_KEYS:
        url = config.get(key)
        if url:
            url = str(url)
            if key == "DATABASE_URL" and url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            return key, url
    raise RuntimeError(
        "no database configured: set SQLALCHEMY_DATABASE_URI or DATABASE_URL,"
        " or initialise Flask-SQLAlchemy on the app"
    )


def engine_for(app: Flask, config: Mapping[str, Any]) -> Engine:
    """Flask-SQLAlchemy's engine if it is set up on ``app``, else our own."""
    sqlalchemy = optional_import("sqlalchemy", "sqlalchemy", "SQLAlchemy")
    extension = app.extensions.get("sqlalchemy")
    if extension is not None and hasattr(extension, "engine"):
        engine: Engine = extension.engine
        with _lock:
            if not sqlalchemy.event.contains(engine, "do_connect", _limit_connect):
                sqlalchemy.event.listen(engine, "do_connect", _limit_connect)
                if engine.dialect.name == "sqlite":
                    sqlalchemy.event.listen(engine, "checkout", _drop_deleted_sqlite)
        return engine
    key, url = _configured_url(config)
    with _lock:
        engines = _engines.setdefault(app, {})
        if url not in engines:
            try:
                engine = _create_engine(sqlalchemy, url)
            except sqlalchemy.exc.ArgumentError:
                # The message would quote the URL, password and all.
                raise RuntimeError(
                    f"{key} is not a valid SQLAlchemy URL such as"
                    " 'postgresql+psycopg://user:password@host/database'"
                ) from None
            sqlalchemy.event.listen(engine, "do_connect", _limit_connect_and_read)
            # Close its pooled connection with the app, not at interpreter exit.
            weakref.finalize(app, engine.dispose)
            engines[url] = engine
        return engines[url]


def _create_engine(sqlalchemy: Any, url: str) -> Engine:
    """Pooled with a ping for a server; unpooled for SQLite, whose
    connections belong to the thread that made them (checks run on several,
    and a pooled one closed later from another thread only logs errors)."""
    if url.startswith("sqlite"):
        engine: Engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool
        )
    else:
        engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
    return engine


def cursor_backend(app: Flask, config: Any) -> Iterator[Connection]:
    """A connection that has just answered ``SELECT 1``.

    A generator factory: the connection goes back to the pool after the
    check. The round trip of ``SELECT 1`` is the observed value, in ms.
    """
    sqlalchemy = optional_import("sqlalchemy", "sqlalchemy", "SQLAlchemy")
    engine = engine_for(app, config)
    select_one = sqlalchemy.select(sqlalchemy.literal_column("1"))
    # A pooled connection of an engine without pool_pre_ping (the app's own,
    # through Flask-SQLAlchemy) fails once after a database restart; the
    # failure invalidates the pool, so one more try gets a new connection.
    for last_try in (False, True):
        with engine.connect() as connection:
            start = time.perf_counter()
            try:
                connection.execute(select_one)
            except sqlalchemy.exc.DBAPIError as e:
                if last_try or not e.connection_invalidated:
                    raise
                continue
            observe(milliseconds(time.perf_counter() - start), "ms")
            yield connection
            return


def _timeout_parameters(
    dialect: Dialect, seconds: float, *, read: bool
) -> dict[str, float]:
    """The connect parameters that bound a driver's waits to ``seconds``.

    :param read: also bound reads (on our own engine only: on the app's,
        the connection goes on to serve queries that may take longer).
    """
    driver = dialect.driver
    if driver in ("psycopg", "psycopg2"):
        # libpq counts whole seconds and waits at least 2.
        return {"connect_timeout": max(2, int(seconds))}
    if driver in ("pymysql", "mysqldb"):
        keys = ("connect_timeout", "read_timeout", "write_timeout")
        # mysqlclient counts whole seconds.
        value = seconds if driver == "pymysql" else max(1, int(seconds))
        return dict.fromkeys(keys if read else keys[:1], value)
    if driver == "pg8000" and read:
        return {"timeout": seconds}
    return {}


def _lower_timeouts(dialect: Dialect, cparams: dict[str, Any], *, read: bool) -> None:
    if time_left() is None:
        return  # Not a health check connecting: the app's settings stand.
    seconds = network_timeout({})
    for key, value in _timeout_parameters(dialect, seconds, read=read).items():
        try:
            current = float(cparams[key])
        except (KeyError, TypeError, ValueError):
            current = None
        if current is None or current <= 0 or current > value:
            cparams[key] = value


def sqlite_file(filename: str, uri: bool) -> str | None:
    """The file an SQLite connection opens, or None for an in-memory one.

    :param filename: what the driver connects to: a path, ``:memory:``, or
        with ``uri`` a ``file:`` URI (with ``uri``, SQLite reads any other
        name as a plain path).
    """
    if uri and filename.startswith("file:"):
        parts = urllib.parse.urlsplit(filename)
        query = urllib.parse.parse_qs(parts.query)
        if query.get("mode", [""])[-1] == "memory" or (
            query.get("vfs", [""])[-1] == "memdb"
        ):
            return None
        filename = urllib.parse.unquote(parts.path)
    return None if filename in ("", ":memory:") else filename


def _refuse_missing_sqlite(
    dialect: Dialect, cargs: Any, cparams: dict[str, Any]
) -> None:
    """Fail a health check's SQLite connection to a file that is missing,
    and open an existing one with ``mode=rw``: never create the database."""
    if dialect.name != "sqlite" or time_left() is None or not cargs:
        return
    filename, uri = cargs[0], bool(cparams.get("uri"))
    if not isinstance(filename, str):
        return
    path = sqlite_file(filename, uri)
    if path is None:
        return
    if not os.path.exists(path):
        raise dialect.loaded_dbapi.OperationalError(
            f"the SQLite database {path!r} does not exist (a health check never"
            f" creates the database it checks: create it when the app starts)"
        )
    if not os.path.isfile(path):
        raise dialect.loaded_dbapi.OperationalError(
            f"the SQLite database {path!r} is not a file"
        )
    if not uri and dialect.driver == "pysqlite":
        cargs[0] = f"file:{urllib.request.pathname2url(path)}?mode=rw"
        cparams["uri"] = True


def _drop_deleted_sqlite(
    dbapi_connection: Any, connection_record: Any, connection_proxy: Any
) -> None:
    """``checkout`` listener for the app's SQLite engine, in a health check.

    A pooled connection to a database file that was deleted still answers,
    from the deleted file, while each new connection of the app would make
    a new, empty database: the check would pass on data nobody will see
    again. Such a connection is dropped (the pool discards it), so the
    check connects afresh and fails with the path.
    """
    if time_left() is None:
        return
    try:
        databases = dbapi_connection.execute("PRAGMA database_list").fetchall()
    except Exception:  # the check's own query will say what is wrong
        return
    for _, name, path in databases:
        if name == "main" and path and not os.path.exists(path):
            sqlalchemy = optional_import("sqlalchemy", "sqlalchemy", "SQLAlchemy")
            raise sqlalchemy.exc.DisconnectionError(
                f"the SQLite database {path!r} was deleted"
            )


def _limit_connect(
    dialect: Dialect, conn_rec: Any, cargs: Any, cparams: dict[str, Any]
) -> None:
    """``do_connect`` listener for the app's engine: connect timeouts only."""
    _refuse_missing_sqlite(dialect, cargs, cparams)
    _lower_timeouts(dialect, cparams, read=False)


def _limit_connect_and_read(
    dialect: Dialect, conn_rec: Any, cargs: Any, cparams: dict[str, Any]
) -> None:
    """``do_connect`` listener for our own engine: connect and read timeouts."""
    _refuse_missing_sqlite(dialect, cargs, cparams)
    _lower_timeouts(dialect, cparams, read=True)


def app_engines(app: Flask) -> list[Engine]:
    """Every engine of ``app`` made so far: ours, and Flask-SQLAlchemy's
    (one per bind) if it is initialised on the app. In the app's context."""
    engines = list(_engines.get(app, {}).values())
    extension = app.extensions.get("sqlalchemy")
    if extension is not None:
        try:
            engines.extend(extension.engines.values())  # Flask-SQLAlchemy 3
        except (AttributeError, KeyError, RuntimeError):
            engine = getattr(extension, "engine", None)  # older versions
            if engine is not None:
                engines.append(engine)
    return engines


@on_fork
def _new_pools_in_child(app: Flask) -> None:
    """In a forked child, before anything of the app runs: every engine of
    the app starts with a new, empty pool; the parent's connections stay
    open, the parent's, and untouched."""
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held it
    for engine in app_engines(app):
        _inherited_pools.append(engine.pool)
        engine.dispose(close=False)
