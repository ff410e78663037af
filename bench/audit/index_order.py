"""Appending to a grown audit log: random request ids against time-ordered ones, same run.

    .venv/bin/python bench/audit/index_order.py [--rows 300000] [--batches 400] [--batch 24]

Fills two SQLite audit logs (the gateway's schema, WAL, ``synchronous=FULL`` for the timed
part) with ``--rows`` entries whose request ids are random (the gateway's ids before the
change) or time-ordered (``gateway.http.request_id.new_request_id`` on a clock that moves one
millisecond every 20 ids, ~20,000 requests/s), then times ``--batches`` appends of ``--batch``
entries each, as the gateway's group commit makes them (the head update, ``executemany`` and
``COMMIT`` on one connection), alternating the two logs batch by batch. Prints CPU and wall
time per entry appended. A 1.8 KB body per entry, as the gateway's intent records.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from bench_audit import ev

import gateway.http.request_id as rid_mod
from audit.schema import metadata
from audit.store import _SQLITE_INSERT, _SQLITE_MOVE, Entry, _records, make_entry

_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def random_id(rnd: random.Random) -> str:
    return "req_" + f"{rnd.getrandbits(96):024x}".translate(_LETTERS)


class Log:
    def __init__(self, root: Path, name: str, ids: Callable[[], str]) -> None:
        self.path = root / f"{name}.db"
        engine = sa.create_engine(f"sqlite:///{self.path}")
        metadata.create_all(engine)
        engine.dispose()
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("INSERT INTO audit_head VALUES (1, 0, x'')")
        self.ids = ids
        self.size = 0
        self.cpu = self.wall = 0.0

    def batch(self, proto: Entry, n: int) -> list[Entry]:
        return [
            Entry(row={**proto.row, "request_id": self.ids()}, leaf=proto.leaf) for _ in range(n)
        ]

    def fill(self, proto: Entry, rows: int) -> None:
        self.db.execute("PRAGMA synchronous=OFF")
        for _ in range(rows // 1000):
            records = _records(self.batch(proto, 1000), self.size + 1)
            self.db.execute("BEGIN")
            self.db.executemany(_SQLITE_INSERT, records)
            self.db.execute("COMMIT")
            self.size += 1000
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("PRAGMA synchronous=FULL")

    def append(self, entries: list[Entry]) -> None:
        n = len(entries)
        c0, t0 = time.process_time(), time.perf_counter()
        records = _records(entries, self.size + 1)
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(_SQLITE_MOVE, (self.size + n, b"\0" * 200, self.size))
        self.db.executemany(_SQLITE_INSERT, records)
        self.db.execute("COMMIT")
        self.cpu += time.process_time() - c0
        self.wall += time.perf_counter() - t0
        self.size += n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=300_000)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--batch", type=int, default=24)
    args = ap.parse_args()
    proto = make_entry("intent", ev(1), "bench:0:0")
    rnd = random.Random(7)
    clock = [1_764_400_000_000_000_000, 0]

    def fake_ns() -> int:
        clock[1] += 1
        if clock[1] % 20 == 0:
            clock[0] += 1_000_000
        return clock[0]

    rid_mod.time.time_ns = fake_ns  # type: ignore[attr-defined]  # the bench's own process
    root = Path(tempfile.mkdtemp(prefix="pcs-index-", dir=Path(__file__).resolve().parents[2]))
    try:
        logs = [
            Log(root, "random", lambda: random_id(rnd)),
            Log(root, "time-ordered", rid_mod.new_request_id),
        ]
        for log in logs:
            log.fill(proto, args.rows)
        for _ in range(args.batches):
            for log in logs:
                log.append(log.batch(proto, args.batch))
        n = args.batches * args.batch
        print(f"rows before: {args.rows}, appended {n} per log in batches of {args.batch}")
        print("| request ids | CPU µs per entry | wall µs per entry |")
        print("|---|---:|---:|")
        for log in logs:
            print(f"| {log.path.stem} | {1e6 * log.cpu / n:.1f} | {1e6 * log.wall / n:.1f} |")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
