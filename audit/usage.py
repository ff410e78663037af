"""Usage from the audit trail: requests, outcomes and tokens per user, team, model, day, ...

Read from the outcome entries (``complete``, and ``incomplete`` for a request whose process died),
one per request, with the export's filters and the reader's scope (an auditor sees the
jurisdictions it may export). Each group counts its requests, those denied by policy, those
allowed that failed (status 400 and above), those forwarded to a backend, and the tokens the
backends reported. An entry whose body was purged keeps its columns (user, team, jurisdiction,
decision, backend) but not its model or tokens: it counts in ``purged`` and under the model
``(purged)``. The report is recorded in the audit trail like an export (kind ``export``, phase
``usage``: who, which filter, which grouping).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import ExportFilter, Scope, record_read, scoped_query
from audit.schema import audit_log

__all__ = ["GROUPS", "UsageRow", "totals", "usage"]

# What a report may be grouped by: the entry's own fields (as the export's filters read them).
GROUPS = ("user", "team", "tenant", "jurisdiction", "backend", "model", "endpoint", "decision",
          "day", "month")  # fmt: skip
_OUTCOMES = ("complete", "incomplete")
_COLUMNS = {
    "user": audit_log.c.user_id,
    "team": audit_log.c.team,
    "tenant": audit_log.c.tenant,
    "jurisdiction": audit_log.c.jurisdiction,
    "backend": audit_log.c.backend,
    "decision": audit_log.c.decision,
}
PURGED = "(purged)"


@dataclass
class UsageRow:
    group: dict[str, str | None]
    requests: int = 0
    denied: int = 0
    failed: int = 0
    forwarded: int = 0
    purged: int = 0
    tokens: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.group,
            "requests": self.requests,
            "denied": self.denied,
            "failed": self.failed,
            "forwarded": self.forwarded,
            "purged": self.purged,
            **self.tokens,
        }


def _group_value(name: str, cols: dict[str, Any], body: dict[str, Any] | None, ts: str) -> Any:
    if name == "day":
        return ts[:10]
    if name == "month":
        return ts[:7]
    if name in _COLUMNS:
        return cols[name]
    if body is None:
        return PURGED
    return body.get(name)  # model, endpoint


async def usage(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str],
    *,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    writer: str = "usage:0:0",
    page: int = 5000,
) -> list[UsageRow]:
    """Groups by ``by`` (names from :data:`GROUPS`, in order), most requests first. Authorises
    and records the read first (:class:`audit.export.AuditForbidden`, ValueError for a name
    that is not a group)."""
    scope.authorise(allowed_roles)
    unknown = [b for b in by if b not in GROUPS]
    if unknown or len(set(by)) != len(by):
        raise ValueError(f"by: distinct names from {', '.join(GROUPS)}")
    await record_read(engine, writer, scope, flt, {"phase": "usage", "by": "+".join(by) or "all"})
    outcomes = ExportFilter(**{**flt.to_json(), "kinds": _OUTCOMES})
    where = scoped_query(outcomes, scope)
    names = list(_COLUMNS)
    cols = [audit_log.c.seq, audit_log.c.ts, audit_log.c.body, *(_COLUMNS[n] for n in names)]
    groups: dict[tuple[Any, ...], UsageRow] = {}
    last = 0
    while True:
        q = sa.select(*cols).where(where, audit_log.c.seq > last).order_by(audit_log.c.seq)
        async with engine.connect() as conn:
            rows = (await conn.execute(q.limit(page))).all()
        if not rows:
            break
        last = int(rows[-1][0])
        for row in rows:
            values = dict(zip(names, row[3:], strict=True))
            body = json.loads(row[2]) if row[2] else None
            key = tuple(_group_value(b, values, body, row[1]) for b in by)
            g = groups.get(key)
            if g is None:
                g = groups[key] = UsageRow(dict(zip(by, key, strict=True)))
            _count(g, values["decision"], body)
    return sorted(groups.values(), key=lambda g: (-g.requests, json.dumps(g.group, default=str)))


def _count(g: UsageRow, decision: str | None, body: dict[str, Any] | None) -> None:
    g.requests += 1
    if decision == "deny":
        g.denied += 1
    if body is None:
        g.purged += 1
        return
    status = body.get("status")
    if decision != "deny" and isinstance(status, int) and status >= 400:
        g.failed += 1
    if body.get("forwarded") is True:
        g.forwarded += 1
    used = body.get("usage") or {}
    for name in g.tokens:
        n = used.get(name)
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            g.tokens[name] += n


def totals(rows: Sequence[UsageRow]) -> dict[str, int]:
    """The columns summed over every group."""
    out = {"requests": 0, "denied": 0, "failed": 0, "forwarded": 0, "purged": 0}
    out |= {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for r in rows:
        for k, v in r.to_json().items():
            if k in out:
                out[k] += v
    return out
