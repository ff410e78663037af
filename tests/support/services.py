"""Real PostgreSQL and Redis for integration tests: a throw-away database per test session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator

__all__ = [
    "PG_ADMIN_DSN",
    "REDIS_URL",
    "create_pg_database",
    "drop_pg_database",
    "pg_available",
    "private_redis",
    "redis_available",
]

PG_ADMIN_DSN = os.environ.get("PORTCULLIS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PORTCULLIS_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pg_available() -> bool:
    return _port_open("127.0.0.1", 5432)


def redis_available() -> bool:
    return _port_open("127.0.0.1", 6379)


def create_pg_database() -> str:
    """Create ``portcullis_test_<random>`` and return its asyncpg SQLAlchemy URL."""
    import asyncpg

    name = "portcullis_test_" + secrets.token_hex(4)

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def go() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, Callable[[bool], None]]]:
    """A Redis server of the caller's own on a free port: its URL, and ``freeze(True/False)``
    (SIGSTOP: it accepts connections and answers nothing; SIGCONT)."""
    import shutil
    import signal
    import subprocess

    server = shutil.which("redis-server")
    assert server, "redis-server is installed by scripts/ensure-services.sh"
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )

    def freeze(on: bool) -> None:
        os.kill(proc.pid, signal.SIGSTOP if on else signal.SIGCONT)

    try:
        deadline = time.monotonic() + 10
        while not _port_open("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", freeze
    finally:
        freeze(False)
        proc.terminate()
        proc.wait(timeout=10)
