"""Retention: a purge job that drops event bodies past their class's age and keeps the leaf
hashes, so the Merkle log still verifies (verification counts purged entries instead).

An entry's class is the policy obligation ``retention_class`` recorded with it, else its
tenant's class from configuration, else the default class. A class whose days are ``None``
(legal hold) is never purged. A request's captured content (:mod:`audit.vault`) is erased with
it: once none of the request's own entries (intent, outcome) keeps a body, its capture row is
deleted. The purge appends a ``purge`` entry with the counts per class and ``captures_erased``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.schema import audit_content, audit_log
from audit.store import append, make_entry

__all__ = ["CAPTURES", "purge"]

_TS = "%Y-%m-%dT%H:%M:%S.%fZ"
# The purge's count of captures erased, beside the counts per class (no class may take the name).
CAPTURES = "captures_erased"
_REQUEST_KINDS = ("intent", "complete", "incomplete")


def _erasable_captures() -> sa.Select[tuple[str]]:
    """Captures of requests whose own entries are all purged (at least one, none with a body)."""
    log = audit_log.c
    mine = sa.and_(log.request_id == audit_content.c.request_id, log.kind.in_(_REQUEST_KINDS))
    return sa.select(audit_content.c.request_id).where(
        sa.exists().where(mine, log.body.is_(None)),
        ~sa.exists().where(mine, log.body.is_not(None)),
    )


def _class_condition(
    cls: str, default_class: str, tenant_classes: Mapping[str, str], known: set[str]
) -> sa.ColumnElement[bool]:
    c = audit_log.c
    explicit = c.retention_class == cls
    unclassed = sa.or_(c.retention_class.is_(None), c.retention_class.not_in(known))
    tenants = [t for t, k in tenant_classes.items() if k == cls]
    by_tenant = c.tenant.in_(tenants) if tenants else sa.false()
    if cls == default_class:
        others = [t for t, k in tenant_classes.items() if k != cls]
        not_other = sa.or_(c.tenant.is_(None), c.tenant.not_in(others)) if others else sa.true()
        return sa.or_(explicit, sa.and_(unclassed, sa.or_(by_tenant, not_other)))
    return sa.or_(explicit, sa.and_(unclassed, by_tenant))


async def purge(
    engine: AsyncEngine,
    retention_days: Mapping[str, int | None],
    default_class: str,
    tenant_classes: Mapping[str, str],
    writer: str,
    now: datetime | None = None,
    actor: str = "retention",
) -> dict[str, int]:
    """Purge bodies older than their class allows, and the captures of requests so purged;
    returns the count per class and :data:`CAPTURES`."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = at.strftime(_TS)
    known = set(retention_days)
    counts: dict[str, int] = {}
    async with engine.begin() as conn:
        for cls, days in sorted(retention_days.items()):
            if days is None:
                continue
            cutoff = (at - timedelta(days=days)).strftime(_TS)
            result = await conn.execute(
                sa.update(audit_log)
                .where(
                    audit_log.c.body.is_not(None),
                    audit_log.c.ts < cutoff,
                    audit_log.c.kind != "purge",
                    _class_condition(cls, default_class, tenant_classes, known),
                )
                .values(body=None, purged_at=stamp)
            )
            counts[cls] = int(result.rowcount or 0)
        erased = await conn.execute(
            sa.delete(audit_content).where(audit_content.c.request_id.in_(_erasable_captures()))
        )
        counts[CAPTURES] = int(erased.rowcount or 0)
    if any(counts.values()):
        async with engine.connect() as conn:
            await append(
                conn, [make_entry("purge", {"actor": actor, "action": dict(counts)}, writer)]
            )
    return counts
