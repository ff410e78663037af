"""Monthly partitions of ``audit_log`` on PostgreSQL (SQLite keeps one table).

The trail is partitioned by range of ``ts`` (RFC 3339 text, which sorts as time): one partition per
calendar month, ``audit_log_2027_01`` holding ``['2027-01-01', '2027-02-01')``; the rows written
before partitioning stay in one partition of everything earlier (``audit_log_before_2026_12``), and
a ``audit_log_default`` partition takes a row no monthly partition covers (a clock far ahead), so an
append never fails for want of a partition. A report, a search or an export over a period reads
only that period's partitions (PostgreSQL prunes the rest), vacuum and index upkeep work a month at
a time, and an operator can move old months to cheaper storage (``ALTER TABLE audit_log_2026_01 SET
TABLESPACE ...``). Rows are never dropped with their partition: a purge clears a row's body and
keeps its leaf hash, so the Merkle tree still verifies (``audit.retention``).

``seq`` stays the order of the log; the primary key is ``(seq, ts)`` because PostgreSQL wants the
partition key in it. ``seq`` is allocated under the head row's lock (``audit.store``), so it stays
unique and gap-free.

:func:`partition_statements` converts a plain ``audit_log`` (the migration ``0011``, and
:func:`audit.db.create_tables`); :func:`ensure_partitions` creates the months ahead, at start and
hourly in every gateway process (``audit.sink``). Creating one takes a brief lock on ``audit_log``;
it waits at most :data:`LOCK_TIMEOUT` and is tried again an hour later if it could not.

If rows of a month reached the default partition before that month's partition existed (the
upkeep could not take its lock for months), PostgreSQL refuses to create the partition while
they are there. :func:`ensure_partitions` then moves them in one transaction under the table's
lock: the default detached, the month's partition created, its rows copied into it and deleted
from the default, the default attached again. The rows are the same rows (``seq``, ``ts``, the
body, the leaf hash); appends wait for it.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "AHEAD",
    "PARTITIONS",
    "ensure_partitions",
    "is_partitioned",
    "month_after",
    "partition_name",
    "partition_statements",
    "partitions",
]

log = logging.getLogger("portcullis.audit")

AHEAD = 2  # months created ahead of the current one
LOCK_TIMEOUT = "2s"  # the longest a partition's creation waits for appends to let go
_BOUND = re.compile(r"TO \('(\d{4}-\d{2}-\d{2})'\)")


def month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"audit_log_{month.year:04d}_{month.month:02d}"


def _month(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _months(first: date, now: datetime | None, ahead: int) -> list[date]:
    """The months from ``first`` through ``ahead`` months after ``now``'s (now by default)."""
    until = _month(now or datetime.now(UTC))
    for _ in range(ahead):
        until = month_after(until)
    out = []
    while first <= until:
        out.append(first)
        first = month_after(first)
    return out


def _moved_out_of_default(month: date) -> list[str]:
    """The statements that give ``month`` its partition when the default holds rows of it."""
    name, lo, hi = partition_name(month), month.isoformat(), month_after(month).isoformat()
    where = f"ts >= '{lo}' AND ts < '{hi}'"  # two dates this module formatted: no input
    return [
        "LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE",
        "ALTER TABLE audit_log DETACH PARTITION audit_log_default",
        _create(month),
        f"INSERT INTO {name} SELECT * FROM audit_log_default WHERE {where}",  # noqa: S608
        f"DELETE FROM audit_log_default WHERE {where}",  # noqa: S608
        "ALTER TABLE audit_log ATTACH PARTITION audit_log_default DEFAULT",
    ]


async def _default_holds(conn: AsyncConnection, month: date) -> bool:
    has_default = await conn.execute(sa.text("SELECT to_regclass('audit_log_default')"))
    if has_default.scalar() is None:
        return False
    found = await conn.execute(
        sa.text("SELECT 1 FROM audit_log_default WHERE ts >= :lo AND ts < :hi LIMIT 1"),
        {"lo": month.isoformat(), "hi": month_after(month).isoformat()},
    )
    return found.first() is not None


def _create(month: date) -> str:
    end = month_after(month)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF audit_log "
        f"FOR VALUES FROM ('{month.isoformat()}') TO ('{end.isoformat()}')"
    )


def partition_statements(
    now: datetime | None = None, ahead: int = AHEAD, user_index: bool = False
) -> list[str]:
    """SQL that turns a plain ``audit_log`` into the partitioned one: the table renamed into the
    partition of everything before next month, a partitioned ``audit_log`` over it, the next
    ``ahead`` months and the default partition. One transaction; the old rows are not copied
    (their primary key is rebuilt as ``(seq, ts)``: on a large trail, minutes). ``user_index``:
    the plain table has the person's index of migration 0015 (a table made from the schema;
    migration 0011 runs before it), kept as the old partition's."""
    first = month_after(_month(now or datetime.now(UTC)))
    old = f"audit_log_before_{first.year:04d}_{first.month:02d}"
    indexes = {
        "request": "request_id",
        "ts": "ts",
        **({"user": "user_id, seq"} if user_index else {}),
    }
    out = [
        "LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE",
        f"ALTER TABLE audit_log RENAME TO {old}",
        *(f"ALTER INDEX ix_audit_log_{name} RENAME TO ix_{old}_{name}" for name in indexes),
        f"ALTER TABLE {old} DROP CONSTRAINT audit_log_pkey",
        f"CREATE TABLE audit_log (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE) "
        "PARTITION BY RANGE (ts)",
        "ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq, ts)",
        *(f"CREATE INDEX ix_audit_log_{name} ON audit_log ({on})" for name, on in indexes.items()),
        f"ALTER TABLE audit_log ATTACH PARTITION {old} "
        f"FOR VALUES FROM (MINVALUE) TO ('{first.isoformat()}')",
    ]
    out += [_create(month) for month in _months(first, now, ahead)]
    out.append("CREATE TABLE IF NOT EXISTS audit_log_default PARTITION OF audit_log DEFAULT")
    return out


async def is_partitioned(conn: AsyncConnection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    found = await conn.execute(
        sa.text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = 'audit_log' AND pg_table_is_visible(c.oid)"
        )
    )
    return found.first() is not None


# ``audit_log``'s partitions: (name, bound as PostgreSQL writes it), by name (also read by
# migration 0015 on its synchronous connection)
PARTITIONS = sa.text(
    "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
    "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
    "WHERE p.relname = 'audit_log' AND pg_table_is_visible(p.oid) ORDER BY c.relname"
)


async def partitions(conn: AsyncConnection) -> list[tuple[str, str]]:
    """``audit_log``'s partitions: (name, bound as PostgreSQL writes it), by name."""
    rows = await conn.execute(PARTITIONS)
    return [(str(name), str(bound)) for name, bound in rows.all()]


async def ensure_partitions(
    conn: AsyncConnection, now: datetime | None = None, ahead: int = AHEAD
) -> list[str]:
    """Create the monthly partitions from the end of the last one through ``ahead`` months
    after ``now``; the names created. Nothing on SQLite or on a table that is not partitioned.
    Commits per partition; a partition another replica is creating, or one that cannot take
    the lock in time, is left to the next call (rows meanwhile go to the default partition)."""
    if not await is_partitioned(conn):
        return []
    ends = [
        date.fromisoformat(m.group(1))
        for _, bound in await partitions(conn)
        if (m := _BOUND.search(bound)) is not None
    ]
    first = max(ends) if ends else _month(now or datetime.now(UTC))
    await conn.commit()
    created = []
    for month in _months(first, now, ahead):
        try:
            await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            stranded = await _default_holds(conn, month)
            for statement in _moved_out_of_default(month) if stranded else [_create(month)]:
                await conn.execute(sa.text(statement))
            await conn.commit()
            created.append(partition_name(month))
            if stranded:
                log.warning(
                    "audit partition %s created; its rows were moved out of the default partition",
                    partition_name(month),
                )
        except sa.exc.DBAPIError as exc:  # lock timeout, a twin replica
            await conn.rollback()
            log.warning(
                "audit partition %s not created now (%s): tried again within the hour",
                partition_name(month),
                type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
            )
            break
    return created
