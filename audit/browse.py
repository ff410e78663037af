"""Pages of the trail for a reader (the web console), newest first, scoped and recorded.

The same filter and scope as an export (:mod:`audit.export`), and the same accountability: the
page is recorded as an ``export`` entry (``phase: browse``) with the filter and the reader's
scope before any row is returned, so browsing the trail leaves the same evidence as exporting it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import ExportFilter, Scope, record_read, scoped_query
from audit.schema import audit_log

__all__ = ["MAX_PAGE", "Page", "browse"]

MAX_PAGE = 500


@dataclass(frozen=True)
class Page:
    entries: list[dict[str, Any]]
    next_before: int | None  # the ``before`` that fetches the next (older) page; None: no more

    def to_json(self) -> dict[str, Any]:
        return {"object": "list", "data": self.entries, "next_before": self.next_before}


def _row(r: Any) -> dict[str, Any]:
    rules = [x for x in (r.rule_ids or "").split(",") if x]
    return {
        "seq": int(r.seq),
        "request_id": r.request_id,
        "kind": r.kind,
        "ts": r.ts,
        "jurisdiction": r.jurisdiction,
        "user": r.user_id,
        "team": r.team,
        "decision": r.decision,
        "backend": r.backend,
        "rules": rules,
        "purged": r.body is None,
        "leaf_hash": bytes(r.leaf_hash).hex(),
        "entry": json.loads(r.body) if r.body is not None else None,
    }


async def browse(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    limit: int = 50,
    before: int | None = None,
    *,
    allowed_roles: tuple[str, ...] = ("admin", "auditor"),
    writer: str = "browse:0:0",
) -> Page:
    """Up to ``limit`` entries with ``seq < before`` (all when None) that ``flt`` and ``scope``
    select, newest first. Authorises first (:class:`audit.export.AuditForbidden`) and records
    the read before returning; ValueError for a limit outside 1..MAX_PAGE."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit: 1 to {MAX_PAGE}")
    scope.authorise(allowed_roles)
    c = audit_log.c
    q = sa.select(audit_log).where(scoped_query(flt, scope))
    if before is not None:
        q = q.where(c.seq < before)
    q = q.order_by(c.seq.desc()).limit(limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    # recorded before anything is returned (a page the trail cannot record is not shown), and
    # after the read, so a page does not open with the record of its own reading
    await record_read(
        engine, writer, scope, flt, {"phase": "browse", "limit": limit, "before": before}
    )
    more = len(rows) > limit
    entries = [_row(r) for r in rows[:limit]]
    return Page(entries, entries[-1]["seq"] if more and entries else None)
