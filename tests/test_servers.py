"""Proof that the test servers and fault helpers behave as promised.

Uses the ``psycopg`` and ``redis`` client libraries of the test extra.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .server_fixtures import REDIS_PASSWORD, require_server, skip_or_fail_missing
from .servers import (
    LOOPBACK,
    BinaryNotFoundError,
    BlackHoleServer,
    PostgresServer,
    RedisServer,
    ServerStartError,
    _child_pids,
    env_flag,
    find_postgres_bindir,
    is_port_open,
)

#: A refused connection must fail at least this fast (it is local).
QUICK = 1.0


def _scalar(url: str, query: str) -> object:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


def _redis(url: str, timeout: float = 2.0) -> redis.Redis:
    # No retries, so a failure shows up at once.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def _running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def _alive_children(pid: int) -> list[int]:
    return [child for child in _child_pids(pid) if _running(child)]


# ------------------------------------------------------------------ postgres


def test_postgres_accepts_the_right_password(running_postgres: PostgresServer) -> None:
    url = running_postgres.url
    assert url == (
        f"postgresql://health:s3cret-pw@127.0.0.1:{running_postgres.port}/health"
    )
    assert _scalar(url, "SELECT 1") == 1
    assert _scalar(url, "SELECT current_user || '@' || current_database()") == (
        "health@health"
    )


def test_postgres_rejects_a_wrong_or_missing_password(
    running_postgres: PostgresServer,
) -> None:
    wrong = running_postgres.url_with_password("not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication"):
        psycopg.connect(wrong, connect_timeout=5)
    no_password = f"postgresql://health@127.0.0.1:{running_postgres.port}/health"
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(no_password, connect_timeout=5)


def test_postgres_stores_scram_and_trusts_only_the_superuser(
    running_postgres: PostgresServer,
) -> None:
    su = running_postgres.superuser_url
    stored = _scalar(su, "SELECT rolpassword FROM pg_authid WHERE rolname = 'health'")
    assert isinstance(stored, str) and stored.startswith("SCRAM-SHA-256$")
    methods = _scalar(
        su,
        "SELECT string_agg(user_name::text || '=' || auth_method, ',' ORDER BY "
        "line_number) FROM pg_hba_file_rules WHERE type = 'host'",
    )
    assert methods == "{postgres}=trust,{all}=scram-sha-256"


def test_postgres_runs_unprivileged_outside_pytest_tmp(
    running_postgres: PostgresServer,
) -> None:
    pid = running_postgres.pid
    assert pid is not None
    if os.geteuid() == 0:
        assert _uid_of(pid) != 0
        assert not str(running_postgres.root).startswith("/tmp/pytest-of-")
    assert running_postgres.data_dir.is_dir()
    assert running_postgres.bindir == find_postgres_bindir()


def test_postgres_stop_refuses_quickly_then_starts_on_same_port_and_data(
    running_postgres: PostgresServer,
) -> None:
    pg = running_postgres
    port = pg.port
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    pg.stop()
    assert not pg.is_running
    assert not is_port_open(LOOPBACK, port)
    began = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(pg.url, connect_timeout=5)
    assert time.monotonic() - began < QUICK
    pg.start()
    assert pg.port == port
    assert _scalar(pg.url, "SELECT 1") == 1
    assert _scalar(pg.url, "SELECT max(v) FROM kept") == 42


def test_postgres_recovers_from_a_crash(running_postgres: PostgresServer) -> None:
    pg = running_postgres
    pid = pg.pid
    assert pid is not None
    children = _alive_children(pid)
    assert children, "postgres should have background processes"
    pg.kill()
    assert not any(_running(child) for child in [pid, *children])
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(pg.url, connect_timeout=5)
    pg.start()
    assert _scalar(pg.url, "SELECT 1") == 1


# --------------------------------------------------------------------- redis


def test_redis_ping_with_the_right_password(running_redis: RedisServer) -> None:
    url = running_redis.url
    assert url == f"redis://:{REDIS_PASSWORD}@127.0.0.1:{running_redis.port}/0"
    with _redis(url) as client:
        assert client.ping() is True


def test_redis_rejects_a_wrong_or_missing_password(running_redis: RedisServer) -> None:
    with (
        _redis(running_redis.url_with_password("nope")) as client,
        pytest.raises(redis.AuthenticationError),
    ):
        client.ping()
    with (
        _redis(running_redis.url_with_password(None)) as client,
        pytest.raises(redis.AuthenticationError),
    ):
        client.ping()


def test_redis_stop_refuses_quickly_then_starts_on_same_port(
    running_redis: RedisServer,
) -> None:
    server = running_redis
    port = server.port
    with _redis(server.url) as client:
        client.set("key", "value")
        server.stop()
        assert not server.is_running
        began = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        assert time.monotonic() - began < QUICK
        server.start()
        assert server.port == port
        assert client.ping() is True
        assert client.get("key") is None  # no persistence: save "", no AOF


@pytest.mark.server
def test_redis_without_password(tmp_path: Path) -> None:
    with require_server(lambda: RedisServer(tmp_path)) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with _redis(server.url) as client:
            assert client.ping() is True
        pid = server.pid
        root = server.root
    assert pid is not None and not _running(pid)
    assert not root.exists()


def _redis_or_skip(port: int | None = None) -> RedisServer:
    return require_server(lambda: RedisServer(port=port))


@pytest.mark.server
def test_first_start_moves_off_a_port_taken_meanwhile() -> None:
    server = _redis_or_skip()
    squatter = socket.create_server((LOOPBACK, server.port))
    with squatter, server:
        assert server.port != squatter.getsockname()[1]
        with _redis(server.url) as client:
            assert client.ping() is True


@pytest.mark.server
def test_start_failure_reports_the_log_tail() -> None:
    with socket.create_server((LOOPBACK, 0)) as squatter:
        server = _redis_or_skip(port=squatter.getsockname()[1])
        with pytest.raises(ServerStartError, match="Address already in use") as info:
            server.start()
        assert "last lines of" in str(info.value)
        root = server.root
        server.cleanup()
        assert not server.is_running and not root.exists()


# ------------------------------------------------------------ network faults


def test_blackhole_accepts_but_never_answers(blackhole: BlackHoleServer) -> None:
    with socket.create_connection(blackhole.address, timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        sock.settimeout(0.5)
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(1)
        waited = time.monotonic() - began
    assert 0.4 < waited < 2.0
    assert blackhole.accepted >= 1


def test_blackhole_makes_a_client_time_out(blackhole: BlackHoleServer) -> None:
    url = f"redis://{LOOPBACK}:{blackhole.port}/0"
    began = time.monotonic()
    with _redis(url, timeout=0.5) as client, pytest.raises(redis.TimeoutError):
        client.ping()
    assert time.monotonic() - began < 2.0


def test_blackhole_closes_everything_on_exit() -> None:
    with BlackHoleServer() as hole:
        client = socket.create_connection(hole.address, timeout=2)
        deadline = time.monotonic() + 2
        while hole.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert hole.accepted == 1
    with client:
        try:
            assert client.recv(1) == b""  # closed by the black hole
        except ConnectionResetError:
            pass
    assert not is_port_open(LOOPBACK, hole.port)


def test_closed_port_refuses_at_once(refused_port: int) -> None:
    began = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, refused_port), timeout=2)
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(f"postgresql://x:y@{LOOPBACK}:{refused_port}/z")
    assert time.monotonic() - began < QUICK


# --------------------------------------------------- missing binaries and CI


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[BinaryNotFoundError]:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(BinaryNotFoundError) as info:
        RedisServer()
    yield info.value


def test_missing_binary_names_the_package(no_redis: BinaryNotFoundError) -> None:
    assert no_redis.binary.startswith("redis-server")
    assert str(no_redis).endswith("not installed: apt-get install redis-server")


@pytest.mark.parametrize("value", ["", "0", "false", "False", "no"])
def test_missing_binary_skips_outside_ci(
    no_redis: BinaryNotFoundError, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    assert not env_flag("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install redis-server"):
        skip_or_fail_missing(no_redis)


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_missing_binary_fails_in_ci(
    no_redis: BinaryNotFoundError, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    assert env_flag("CI")
    with pytest.raises(pytest.fail.Exception, match="apt-get install redis-server"):
        skip_or_fail_missing(no_redis)
