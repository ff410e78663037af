"""Appending entries to the log: one linear history across processes and replicas.

:func:`append` runs inside one transaction: it bumps ``audit_head.size`` first (that ``UPDATE``
takes the row lock on PostgreSQL and the write lock on SQLite, so concurrent writers queue up
instead of racing), inserts the entries with consecutive ``seq`` and stores the new Merkle
frontier. A rollback returns the sequence numbers, so the history has no gaps.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.canonical import encode_normalised
from audit.event import (
    EVENT,
    KINDS,
    SCHEMA_VERSION,
    normalise_exotic,
    normalise_fields,
)
from audit.merkle import Frontier, leaf_hash
from audit.schema import audit_head, audit_log

__all__ = [
    "Entry",
    "Head",
    "Static",
    "append",
    "append_head",
    "make_entry",
    "now_ts",
    "parse_utc",
    "prepare",
    "read_head",
    "static_part",
    "writer_id",
]


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC time (no offset: UTC; ``Z`` accepted).
    ValueError."""
    at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def writer_id() -> str:
    """``host:pid:nonce`` of this process; recovery uses it to tell dead writers from live ones."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry ready to insert (everything but ``seq``)."""

    row: dict[str, Any]
    leaf: bytes


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    frontier: Frontier


def _rules(decision: Any) -> str | None:
    if not isinstance(decision, Mapping):
        return None
    ids = list(decision.get("rule_ids") or []) + list(decision.get("denying_rule_ids") or [])
    return ("," + ",".join(sorted(set(ids))) + ",") if ids else None


# The fields of a request's event that its intent and its completion share (the rest: outcome,
# timings, usage, digests). Normalised once per request, see :func:`static_part`.
STATIC_KEYS = (
    "request_id",
    "endpoint",
    "principal",
    "decision",
    "bundle_revision",
    "config_hash",
    "decision_input",
    "client_address",
)
_DYNAMIC_KEYS = tuple(k for k in EVENT if k not in STATIC_KEYS)
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class Static:
    """The normalised values of an event's :data:`STATIC_KEYS`, with the values they came from.
    It stands in for those fields of a later event only when that event holds the very same
    objects (containers) or equal scalars of the same type, so the result is byte-for-byte what
    normalising the whole later event gives (the gateway does not mutate an event's parts once
    handed over)."""

    sources: tuple[Any, ...]
    values: dict[str, Any]
    stripped: int
    exotic: bool

    def matches(self, event: Mapping[str, Any]) -> bool:
        for k, src in zip(STATIC_KEYS, self.sources, strict=True):
            v = event.get(k)
            if v is src:
                continue
            if not (isinstance(src, _SCALARS) and type(v) is type(src) and v == src):
                return False
        return True


def static_part(event: Mapping[str, Any]) -> Static:
    values, stripped, exotic = normalise_fields(event, STATIC_KEYS)
    return Static(tuple(event.get(k) for k in STATIC_KEYS), values, stripped, exotic)


def _body(
    kind: str, event: Mapping[str, Any], static: Static | None
) -> tuple[dict[str, Any], bytes]:
    if static is None or not static.matches(event):
        body, exotic = normalise_exotic(event, kind)
    else:
        if kind not in KINDS:
            raise ValueError("unknown audit event kind")
        dynamic, stripped, exotic = normalise_fields(event, _DYNAMIC_KEYS)
        body = {**static.values, **dynamic}
        body["schema"] = SCHEMA_VERSION
        body["kind"] = kind
        body["stripped"] = static.stripped + stripped + len(event.keys() - EVENT.keys())
        exotic = exotic or static.exotic
    if body.get("ts") is None:
        body["ts"] = now_ts()
    return body, encode_normalised(body, exotic)


def make_entry(
    kind: str, event: Mapping[str, Any], writer: str, static: Static | None = None
) -> Entry:
    """Normalise ``event`` (strip content), fix its time, hash the canonical bytes.

    ``static`` (from :func:`static_part` of an earlier event of the same request) saves
    normalising and encoding the shared fields again; the entry is the same either way.
    """
    body, raw = _body(kind, event, static)
    principal = body.get("principal") or {}
    decision = body.get("decision")
    backend = body.get("backend") or {}
    allow = decision.get("allow") if isinstance(decision, Mapping) else None
    obligations = decision.get("obligations") if isinstance(decision, Mapping) else None
    retention = obligations.get("retention_class") if isinstance(obligations, Mapping) else None
    row = {
        "request_id": body.get("request_id"),
        "kind": kind,
        "ts": body["ts"],
        "writer": writer,
        "tenant": principal.get("tenant"),
        "jurisdiction": principal.get("jurisdiction"),
        "user_id": principal.get("user"),
        "team": principal.get("team"),
        "decision": None if allow is None else ("allow" if allow else "deny"),
        "backend": backend.get("id"),
        "rule_ids": _rules(decision),
        "retention_class": retention if isinstance(retention, str) else None,
        "body": raw.decode("utf-8"),
        "leaf_hash": leaf_hash(raw),
        "purged_at": None,
    }
    return Entry(row=row, leaf=row["leaf_hash"])


async def _ensure_head(conn: AsyncConnection) -> None:
    exists = (await conn.execute(sa.select(audit_head.c.id).where(audit_head.c.id == 1))).first()
    if exists is None:
        try:
            async with conn.begin_nested():
                await conn.execute(sa.insert(audit_head).values(id=1, size=0, frontier=b""))
        except sa.exc.IntegrityError:
            pass  # another writer created it first


async def read_head(conn: AsyncConnection) -> Head:
    row = (
        await conn.execute(
            sa.select(audit_head.c.size, audit_head.c.frontier).where(audit_head.c.id == 1)
        )
    ).first()
    if row is None:
        return Head(0, Frontier())
    return Head(int(row.size), Frontier.from_bytes(int(row.size), bytes(row.frontier)))


_COLUMNS = [c.name for c in audit_log.columns]


def _records(entries: Sequence[Entry], first: int) -> list[tuple[Any, ...]]:
    """The entries as rows in table column order, ``seq`` numbered from ``first``."""
    return [
        tuple(first + i if c == "seq" else e.row[c] for c in _COLUMNS)
        for i, e in enumerate(entries)
    ]


def _extended(known: Head, entries: Sequence[Entry]) -> Frontier:
    """The frontier after appending ``entries`` to the head as this writer left it."""
    frontier = known.frontier.copy()
    frontier.extend(e.leaf for e in entries)
    return frontier


async def _insert(conn: AsyncConnection, entries: Sequence[Entry], first: int) -> None:
    """Insert with consecutive ``seq``: PostgreSQL COPY (asyncpg) for batches, else executemany."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg" and len(entries) > 8:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        records = _records(entries, first)
        await raw.copy_records_to_table("audit_log", records=records, columns=_COLUMNS)
        return
    await conn.execute(
        sa.insert(audit_log), [{**e.row, "seq": first + i} for i, e in enumerate(entries)]
    )


_SQLITE_MOVE = "UPDATE audit_head SET size = ?, frontier = ? WHERE id = 1 AND size = ?"
# "INSERT INTO audit_log (<columns in table order>) VALUES (?, ...)"
_SQLITE_INSERT = str(sa.insert(audit_log).compile(dialect=sqlite_dialect.dialect()))
# Rows per multi-row INSERT: powers of two up to 64 (a batch of 24 is one statement of 16 rows
# and one of 8), so a few statements serve every batch size and stay in sqlite3's statement
# cache; 64 rows of 16 columns stay far below SQLite's 32,766 bound parameters.
_SQLITE_CHUNKS = (64, 32, 16, 8, 4, 2, 1)
_INTO, _ROW = _SQLITE_INSERT.split(" VALUES ", 1)
_SQLITE_INSERT_ROWS = {n: _INTO + " VALUES " + ", ".join([_ROW] * n) for n in _SQLITE_CHUNKS}


def _insert_rows_sqlite(db: sqlite3.Connection, records: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``records`` with a few multi-row statements instead of one statement per row.

    The sqlite3 module lets go of the GIL around every step of a statement, and ``executemany``
    steps once per row: each time, the event loop's thread (on the same core under load) and
    this one hand the GIL back and forth. A multi-row INSERT is one step. Measured with both
    gateways on one core at once (``bench/core/cpu.py --together``, 8 rounds): +1.7 % requests
    per second, within the noise of a single round (docs/benchmarks.md).
    """
    i, total = 0, len(records)
    while i < total:
        n = next(c for c in _SQLITE_CHUNKS if c <= total - i)
        db.execute(_SQLITE_INSERT_ROWS[n], [v for r in records[i : i + n] for v in r])
        i += n


async def _append_sqlite(
    conn: AsyncConnection, entries: Sequence[Entry], known: Head
) -> Head | None:
    """The known-head append on SQLite (aiosqlite) as one call on the driver's thread: the same
    statements and the same durable ``COMMIT``, without a thread hop per statement. ``None``
    when the head moved (or the driver is not in the expected state): the caller then takes
    the general path."""
    if conn.in_transaction():
        return None
    driver: Any = (await conn.get_raw_connection()).driver_connection
    run_in_thread = getattr(driver, "_execute", None)
    if run_in_thread is None:
        return None
    n = len(entries)
    frontier = _extended(known, entries)
    first = known.size + 1
    records = _records(entries, first)
    move = (known.size + n, frontier.to_bytes(), known.size)

    def run(db: sqlite3.Connection) -> bool:
        if db.in_transaction:
            return False
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute(_SQLITE_MOVE, move).rowcount != 1:
                db.execute("ROLLBACK")
                return False
            _insert_rows_sqlite(db, records)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    return Head(known.size + n, frontier) if await run_in_thread(run, driver._conn) else None


_PG_MOVE = "UPDATE audit_head SET size = $1, frontier = $2 WHERE id = 1 AND size = $3"
_PG_INSERT = str(sa.insert(audit_log).compile(dialect=postgresql_dialect.asyncpg.dialect()))  # type: ignore[no-untyped-call]


class _HeadMoved(Exception):
    pass


async def _append_asyncpg(
    conn: AsyncConnection, entries: Sequence[Entry], known: Head
) -> Head | None:
    """The known-head append on PostgreSQL straight on the asyncpg connection: one transaction,
    the same statements, without SQLAlchemy's per-statement work. ``None`` when the head moved
    (rolled back; the caller takes the locking path)."""
    if conn.in_transaction():
        return None
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if driver.is_in_transaction():
        return None
    n = len(entries)
    frontier = _extended(known, entries)
    first = known.size + 1
    records = _records(entries, first)
    try:
        async with driver.transaction():
            moved = await driver.execute(_PG_MOVE, known.size + n, frontier.to_bytes(), known.size)
            if moved != "UPDATE 1":
                raise _HeadMoved
            if n > 8:
                await driver.copy_records_to_table("audit_log", records=records, columns=_COLUMNS)
            else:
                await driver.executemany(_PG_INSERT, records)
    except _HeadMoved:
        return None
    return Head(known.size + n, frontier)


async def append(conn: AsyncConnection, entries: Sequence[Entry], known: Head | None = None) -> int:
    """Append ``entries`` in one transaction; return the ``seq`` of the first (1-based).

    ``known`` is the head as this writer last left it: when it is still current (no other
    writer appended since), one conditional ``UPDATE`` both checks that and moves the head,
    saving a round trip; otherwise the locking path below runs in the same transaction.
    """
    head = await append_head(conn, entries, known)
    return head.size - len(entries) + 1


async def append_head(
    conn: AsyncConnection, entries: Sequence[Entry], known: Head | None = None
) -> Head:
    """:func:`append`, returning the head it left (size and Merkle frontier), which the caller
    can pass as ``known`` next time without reading it back."""
    if not entries:
        raise ValueError("nothing to append")
    n = len(entries)
    if known is not None and conn.dialect.name == "sqlite" and conn.dialect.driver == "aiosqlite":
        done = await _append_sqlite(conn, entries, known)
        if done is not None:
            return done
    if known is not None and conn.dialect.name == "postgresql" and conn.dialect.driver == "asyncpg":
        done = await _append_asyncpg(conn, entries, known)
        if done is not None:
            return done
    async with conn.begin():
        if known is not None:
            frontier = _extended(known, entries)
            moved = await conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.id == 1, audit_head.c.size == known.size)
                .values(size=known.size + n, frontier=frontier.to_bytes())
            )
            if moved.rowcount == 1:
                await _insert(conn, entries, known.size + 1)
                return Head(known.size + n, frontier)
        bumped = (
            await conn.execute(
                sa.update(audit_head)
                .where(audit_head.c.id == 1)
                .values(size=audit_head.c.size + n)
                .returning(audit_head.c.size, audit_head.c.frontier)
            )
        ).first()
        if bumped is None:
            raise RuntimeError("audit_head is missing")
        size = int(bumped.size)
        first = size - n + 1
        frontier = Frontier.from_bytes(first - 1, bytes(bumped.frontier))
        frontier.extend(e.leaf for e in entries)
        await _insert(conn, entries, first)
        await conn.execute(
            sa.update(audit_head).where(audit_head.c.id == 1).values(frontier=frontier.to_bytes())
        )
    return Head(size, frontier)


async def prepare(conn: AsyncConnection) -> None:
    """Make sure the head row exists (idempotent; safe with several writers)."""
    async with conn.begin():
        await _ensure_head(conn)
