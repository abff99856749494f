"""``redis``: a Redis client that has just answered ``PING``.

The client connects to the server of the app's own Redis client when one is
in ``app.extensions["redis"]`` (as Flask-Redis keeps it), else to
``REDIS_URL``. Either way the check opens its own connection, with connect
and read timeouts below the check's timeout and no retries: the app's
client may wait as long as it likes, a health check must not, and a fresh
connection sees an outage that a pooled one would hide until it is used.

In a forked child (a pre-fork server's worker), the app's own client in
``app.extensions["redis"]`` gets an empty pool before anything of the app
runs there: a connection made in the parent is never used by the child.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask

from ..forks import on_fork
from ..services import observe
from ._support import milliseconds, network_timeout, optional_import

if TYPE_CHECKING:
    from redis import ConnectionPool, Redis


def _pool(app: Flask, config: Mapping[str, Any]) -> ConnectionPool:
    redis = optional_import("redis", "redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    seconds = network_timeout(config)
    options = {
        "socket_connect_timeout": seconds,
        "socket_timeout": seconds,
        # Retrying would multiply the wait; the next check is the retry.
        "retry": Retry(NoBackoff(), 0),
    }
    client = app.extensions.get("redis")
    existing = getattr(client, "connection_pool", None)
    pool: ConnectionPool
    if existing is not None:
        pool = redis.ConnectionPool(
            connection_class=existing.connection_class,
            **{**existing.connection_kwargs, **options},
        )
        return pool
    url = config.get("REDIS_URL")
    if not url:
        raise RuntimeError(
            "no Redis configured: set REDIS_URL, such as 'redis://localhost:6379/0'"
        )
    try:
        pool = redis.ConnectionPool.from_url(str(url), **options)
        return pool
    except ValueError:
        # The message would quote the URL, password and all.
        raise RuntimeError(
            "REDIS_URL is not a valid Redis URL such as"
            " 'redis://:password@localhost:6379/0'"
        ) from None


def redis_client(app: Flask, config: Any) -> Iterator[Redis]:
    """A client whose ``PING`` was just answered; closed after the check.

    The time to connect and get the answer is the observed value, in ms.
    """
    redis = optional_import("redis", "redis")
    pool = _pool(app, config)
    client = redis.Redis(connection_pool=pool)
    try:
        start = time.perf_counter()
        client.ping()
        observe(milliseconds(time.perf_counter() - start), "ms")
        yield client
    finally:
        client.close()
        pool.disconnect()


@on_fork
def _new_pool_in_child(app: Flask) -> None:
    """In a forked child: the app's own Redis client forgets the parent's
    connections, without closing them (redis-py would on its next command;
    this makes it so before the app's first)."""
    pool = getattr(app.extensions.get("redis"), "connection_pool", None)
    if pool is not None and getattr(pool, "pid", os.getpid()) != os.getpid():
        pool.reset()
