"""Real PostgreSQL and Redis for integration tests: a throw-away database per test session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PG_ADMIN_DSN",
    "REDIS_URL",
    "PrivatePostgres",
    "RedisControl",
    "create_pg_database",
    "drop_pg_database",
    "pg_available",
    "private_postgres",
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


class RedisControl:
    """A private Redis server's switches: called with True it freezes the server (SIGSTOP: it
    accepts connections and answers nothing), with False it thaws it (SIGCONT); :meth:`kill`
    ends it (SIGKILL: connections are refused from then on)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def __call__(self, on: bool) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP if on else signal.SIGCONT)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, RedisControl]]:
    """A Redis server of the caller's own on a free port: its URL, and its switches
    (:class:`RedisControl`: ``freeze(True/False)``, ``.kill()``)."""
    import shutil

    server = shutil.which("redis-server")
    assert server, "redis-server is installed by scripts/ensure-services.sh"
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    freeze = RedisControl(proc)
    try:
        deadline = time.monotonic() + 10
        while not _port_open("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", freeze
    finally:
        freeze(False)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


class PrivatePostgres:
    """A PostgreSQL server of the caller's own (see :func:`private_postgres`)."""

    def __init__(self, bin_dir: Path, data: Path, port: int, as_postgres: list[str]) -> None:
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        self._bin, self._data, self._as = bin_dir, data, as_postgres
        self._options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(self._bin / "initdb"), "-D", str(self._data), "-A", "trust", "-U",
                  "postgres", "--no-sync")  # fmt: skip

    def start(self) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-o", self._options, "-l",
                  str(self._data / "log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        """At once, as a crashed server (``pg_ctl stop -m immediate``)."""
        self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "-w",
                  "stop")  # fmt: skip

    def freeze(self, on: bool, everything: bool = False) -> None:
        """SIGSTOP the postmaster (new connections are queued by the kernel and never served),
        and with ``everything`` each of its processes too (open connections answer nothing
        either: a paused machine) / SIGCONT."""
        import signal

        import psutil

        pid = int((self._data / "postmaster.pid").read_text().split()[0])
        if not on:
            pids = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
            for p in reversed(pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGCONT)
            return
        os.kill(pid, signal.SIGSTOP)
        # The signal is delivered asynchronously: until the postmaster has stopped it may still
        # fork a backend, which a list of its children taken too early would miss (and leave
        # serving: a "frozen" server answering a pooled connection).
        deadline = time.monotonic() + 5
        while psutil.Process(pid).status() != psutil.STATUS_STOPPED:
            assert time.monotonic() < deadline, "the postmaster did not stop"
            time.sleep(0.005)
        if not everything:
            return
        stopped: set[int] = set()
        while True:
            children = {c.pid for c in psutil.Process(pid).children(recursive=True)} - stopped
            if not children:
                return
            for p in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGSTOP)
            stopped |= children


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the caller's own, a fresh cluster in a directory of its own under
    the system's temporary directory (pytest's are private to the user running the tests), on a
    free port, database ``postgres`` with trust auth; it can be stopped, started and frozen.
    Run as the ``postgres`` user when the tests run as root (CI), as PostgreSQL requires."""
    import glob
    import shutil
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda b: int(b.split("/")[-2]))
    assert bins, "PostgreSQL is installed by scripts/ensure-services.sh"
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="portcullis-pg-"))
    if as_postgres:
        shutil.chown(data, "postgres")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pg = PrivatePostgres(Path(bins[-1]), data, port, as_postgres)
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, OSError, ValueError):
            pg.freeze(False, everything=True)
            pg.stop()
        shutil.rmtree(data, ignore_errors=True)
