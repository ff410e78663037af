"""Reading a running gateway's SQLite audit trail from a test."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["settled_entries"]


def settled_entries(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    """The trail's entries of ``kind`` in order, once none is still being written: a completion
    record lands after its answer went out, so the count is read until it stops growing."""
    seen: list[dict[str, Any]] | None = None
    while True:
        time.sleep(0.3)
        with sqlite3.connect(data_dir / "portcullis.db") as db:
            rows = db.execute("SELECT body FROM audit_log WHERE kind = ? ORDER BY seq", (kind,))
            now = [json.loads(b) for (b,) in rows]
        if seen is not None and len(now) == len(seen):
            return now
        seen = now
