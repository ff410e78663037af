"""The SQLite append's multi-row INSERT writes every row of a batch, in order, for any size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from audit.schema import audit_log, metadata
from audit.store import _COLUMNS, _SQLITE_CHUNKS, _insert_rows_sqlite, _records, make_entry


def test_batches_of_every_size_are_written_whole_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
    db = sqlite3.connect(path, isolation_level=None)
    sizes = [1, 2, 3, 7, 24, 63, 64, 65, 130, 257]
    assert max(_SQLITE_CHUNKS) * len(_COLUMNS) < 32_766  # SQLite's bound-parameter limit
    written: list[tuple[object, ...]] = []
    first = 1
    for n in sizes:
        entries = [
            make_entry("intent", {"request_id": f"req-{first + i}", "status": i}, "w")
            for i in range(n)
        ]
        records = _records(entries, first)
        db.execute("BEGIN")
        _insert_rows_sqlite(db, records)
        db.execute("COMMIT")
        written += records
        first += n
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM {audit_log.name} ORDER BY seq").fetchall()
    assert rows == written
    assert [r[0] for r in rows] == list(range(1, sum(sizes) + 1))
