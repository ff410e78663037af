"""Start-up recovery: intents whose process died before the completion get an ``incomplete``
entry (appended, never edited), so the log shows every request that may have been forwarded.

An intent counts as orphaned when no ``complete``/``incomplete`` entry follows it for the same
request id and either its writer was a process on this host that no longer runs, or it is older
than the grace period (writers on other hosts, which this process cannot probe).
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.schema import audit_log
from audit.store import append, make_entry

__all__ = ["recover"]

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


def _process_gone(writer: str, host: str, me: str) -> bool:
    parts = writer.split(":")
    if len(parts) != 3 or parts[0] != host or writer == me:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return True  # an earlier incarnation with our pid (pid reused after a restart)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def recover(
    engine: AsyncEngine, writer: str, grace_s: int, window_h: int, batch: int = 1000
) -> int:
    """Append ``incomplete`` entries for orphaned intents; return how many."""
    now = datetime.now(UTC)
    since = (now - timedelta(hours=window_h)).strftime(_TS)
    cutoff = (now - timedelta(seconds=grace_s)).strftime(_TS)
    host = socket.gethostname()[:40]
    later = audit_log.alias("later")
    query = (
        sa.select(audit_log.c.request_id, audit_log.c.writer, audit_log.c.ts, audit_log.c.body)
        .where(audit_log.c.kind == "intent", audit_log.c.ts >= since)
        .where(
            ~sa.exists().where(
                later.c.request_id == audit_log.c.request_id,
                later.c.kind.in_(("complete", "incomplete")),
            )
        )
        .order_by(audit_log.c.seq)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    entries = []
    for r in rows:
        if r.request_id is None:
            continue
        if r.ts < cutoff or _process_gone(r.writer, host, writer):
            body = json.loads(r.body) if r.body else {"request_id": r.request_id}
            body.pop("ts", None)
            body["status"] = None
            body["error_code"] = "incomplete"
            entries.append(make_entry("incomplete", body, writer))
    for i in range(0, len(entries), batch):
        async with engine.connect() as conn:
            await append(conn, entries[i : i + batch])
    return len(entries)
