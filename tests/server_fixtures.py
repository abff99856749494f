"""Pytest fixtures for real PostgreSQL and Redis servers and network faults.

They are imported into ``tests/conftest.py``, which makes them available
to every test module.

The servers are started once per session and stopped, with their files
removed, when it ends. Fault tests may stop them: ask for ``running_postgres``
/ ``running_redis`` (or the ``*_url`` fixtures) to get a server that is
running when the test starts, and that is running again after it.

A missing server program skips the tests that need it, with the command that
installs it, unless environment variable ``CI`` is truthy: then they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import pytest

from .servers import (
    BinaryNotFoundError,
    BlackHoleServer,
    PostgresServer,
    RedisServer,
    closed_port,
    env_flag,
)

#: Password of the session Redis server (``requirepass``).
REDIS_PASSWORD = "r3dis-pw"

_Server = TypeVar("_Server", PostgresServer, RedisServer)


def skip_or_fail_missing(exc: BinaryNotFoundError) -> NoReturn:
    """Skip the test for a missing server program, or fail it under CI."""
    if env_flag("CI"):
        pytest.fail(
            f"{exc} (CI={os.environ.get('CI')!r}: a missing server program is "
            "an error in CI, not a skip)",
            pytrace=False,
        )
    pytest.skip(str(exc))


def require_server(factory: Callable[[], _Server]) -> _Server:
    """``factory()``, or skip (fail under CI) if its server program is missing."""
    try:
        return factory()
    except BinaryNotFoundError as exc:
        missing = exc
    # Outside the except block, so the report is not a chained traceback.
    skip_or_fail_missing(missing)


def _serve(factory: Callable[[], _Server]) -> Iterator[_Server]:
    server = require_server(factory)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PostgresServer]:
    """PostgreSQL for the session: role ``health``, password ``s3cret-pw``,
    database ``health``, on a free loopback port. May be stopped by a test;
    see :func:`running_postgres`."""
    base = tmp_path_factory.mktemp("postgres")
    yield from _serve(lambda: PostgresServer(base))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Redis for the session, password :data:`REDIS_PASSWORD`. May be stopped
    by a test; see :func:`running_redis`."""
    base = tmp_path_factory.mktemp("redis")
    yield from _serve(lambda: RedisServer(base, password=REDIS_PASSWORD))


@pytest.fixture
def running_postgres(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """:func:`postgres_server`, running at the start of the test and again
    after it (the test may stop or kill it)."""
    yield postgres_server.ensure_running()
    postgres_server.ensure_running()


@pytest.fixture
def running_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """:func:`redis_server`, running at the start of the test and again
    after it (the test may stop or kill it)."""
    yield redis_server.ensure_running()
    redis_server.ensure_running()


@pytest.fixture
def postgres_url(running_postgres: PostgresServer) -> str:
    """URL of the running session PostgreSQL, with the right password."""
    return running_postgres.url


@pytest.fixture
def redis_url(running_redis: RedisServer) -> str:
    """URL of the running session Redis, with the right password."""
    return running_redis.url


@pytest.fixture
def blackhole() -> Iterator[BlackHoleServer]:
    """A loopback port that accepts connections and never answers."""
    with BlackHoleServer() as server:
        yield server


@pytest.fixture
def refused_port() -> int:
    """A loopback port where connections are refused."""
    return closed_port()
