"""Denials: which rules refused which requests, with their legal or organisational basis — the
evidence that a ban is enforced.

A regulator's or an auditor's question after "is the ban on the hosted DeepSeek service applied
to our public servants?" is "show me": per rule that denied, how many requests it refused, how
many different people asked, when first and last, under which citations (the government actions
the decision cited). Read from the outcome entries whose decision was a denial, unnesting each
one's ``decision.denying_rule_ids`` when grouped by ``rule``: a request that two rules denied
then counts under both, so the groups' ``requests`` can add up to more than ``totals``' (which
counts each once; without ``rule`` each request counts once in its group as well). A group's
citations are those its denying rules cited: each entry's ``decision.denial_citations`` (rule ->
the actions its own reasons cited; since 2026-12-01) — so two rules that refused one request
(a federal direction and a state's) are each credited with their own — and, for an entry
written before, the decision's ``citation_ids`` (then a decision two rules made lists both
rules' citations under each). The caller can pass the policy data's actions (``citations``) to
name each one's authority, instrument, date and source.
Scoped and recorded like an export (phase ``denials``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import ExportFilter, Scope, scoped_query
from audit.json_sql import entries, json_at, members, strings
from audit.usage import GROUPS as USAGE_GROUPS
from audit.usage import PURGED, begin_report, group_expr

__all__ = ["DEFAULT_BY", "GROUPS", "DenialRow", "denials"]

GROUPS = ("rule", *USAGE_GROUPS)
DEFAULT_BY = ("rule", "jurisdiction")
NONE = "(none)"  # a denial that named no denying rule (a malformed decision fails closed so)


@dataclass
class DenialRow:
    group: dict[str, str | None]
    requests: int = 0
    people: int = 0
    first: str | None = None
    last: str | None = None
    citations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.group,
            "requests": self.requests,
            "people": self.people,
            "first": self.first,
            "last": self.last,
            "citations": self.citations,
        }


def _cited(ids: Sequence[str], citations: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each citation id with what the policy data says of it (only the id when it says none)."""
    out = []
    for i in sorted(ids):
        known = citations.get(i) or {}
        out.append(
            {"id": i}
            | {
                k: known.get(k)
                for k in ("authority", "instrument", "effective_date", "status", "url")
                if known.get(k) is not None
            }
        )
    return out


def _citations_query(
    dialect: str, e: Any, source: Any, keys: Sequence[Any], rules: Any | None
) -> Any:
    """Each group's keys with each citation id its denying rules cited, distinct: the rule's own
    (``denial_citations``) where the entry keeps them, else the decision's (``citation_ids``)."""
    by_rule = json_at(dialect, e.doc, "decision", "denial_citations")
    # kept: an object naming at least one rule (a denial names one; a record from before, or
    # one whose decision came from elsewhere, has none and reads the decision's citations)
    if dialect == "postgresql":
        kept = sa.and_(
            sa.func.jsonb_typeof(by_rule) == "object", by_rule != sa.cast(sa.literal("{}"), JSONB)
        )
    else:
        kept = sa.and_(sa.func.json_type(by_rule) == "object", by_rule != "{}")
    every = json_at(dialect, e.doc, "decision", "citation_ids")
    if rules is not None:  # one row per (entry, rule): that rule's own citations
        if dialect == "postgresql":
            own = sa.func.jsonb_extract_path(e.doc, "decision", "denial_citations", rules.c.value)
        else:  # rule ids hold no '"' (identifiers), so a quoted path member is safe
            path = sa.literal('$.decision.denial_citations."') + rules.c.value + sa.literal('"')
            own = sa.func.json_extract(e.doc, path)
        cites = strings(dialect, sa.case((kept, own), else_=every)).alias("cite")
        q = sa.select(*keys, cites.c.value).select_from(source.join(cites, sa.true()))
        return q.distinct()
    # each request once: the citations of all its denying rules
    old = strings(dialect, sa.case((kept, None), else_=every)).alias("cite")
    listed = members(dialect, sa.case((kept, by_rule), else_=None)).alias("listed")
    new = strings(dialect, listed.c.value).alias("cite_new")
    return sa.union(
        sa.select(*keys, old.c.value).select_from(source.join(old, sa.true())),
        sa.select(*keys, new.c.value).select_from(
            source.join(listed, sa.true()).join(new, sa.true())
        ),
    )


async def denials(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str] = DEFAULT_BY,
    *,
    citations: Mapping[str, Mapping[str, Any]] | None = None,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    writer: str = "denials:0:0",
) -> tuple[list[DenialRow], dict[str, Any]]:
    """The denials grouped by ``by`` (names from :data:`GROUPS`; ``rule`` is the denying rule),
    most first, and the totals (each request once). Authorises and records the read first
    (:class:`audit.export.AuditForbidden`; ValueError for a name that is not a group)."""
    denied = await begin_report(
        engine, flt, scope, by, GROUPS, "denials", allowed_roles=allowed_roles, writer=writer,
        decision="deny",
    )  # fmt: skip
    dialect = engine.dialect.name
    sub = entries(dialect, scoped_query(denied, scope))
    e = sub.c
    rules = strings(dialect, json_at(dialect, e.doc, "decision", "denying_rule_ids")).alias("rule")
    # a purged body no longer names its rules: it counts under (purged), as in the other reports
    rule = sa.case((e.doc.is_(None), PURGED), else_=sa.func.coalesce(rules.c.value, NONE))
    keys = [
        (rule if b == "rule" else group_expr(b, dialect, e)).label(f"g{i}")
        for i, b in enumerate(by)
    ]
    n = len(by)
    # one row per denying rule only when grouped by rule: otherwise each request once
    source = sub.outerjoin(rules, sa.true()) if "rule" in by else sub
    q = sa.select(
        *keys,
        sa.func.count(),
        sa.func.count(sa.distinct(e.user)),
        sa.func.min(e.ts),
        sa.func.max(e.ts),
    ).select_from(source)
    if keys:
        q = q.group_by(*keys)
    cq = _citations_query(dialect, e, source, keys, rules if "rule" in by else None)
    total_q = sa.select(
        sa.func.count(), sa.func.count(sa.distinct(e.user)), sa.func.min(e.ts), sa.func.max(e.ts)
    ).select_from(sub)
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
        cited = (await conn.execute(cq)).all()
        (total,) = (await conn.execute(total_q)).all()
    seen: dict[tuple[Any, ...], set[str]] = {}
    for row in cited:
        seen.setdefault(tuple(row[:n]), set()).add(row[n])
    known = citations or {}
    out = [
        DenialRow(
            dict(zip(by, row[:n], strict=True)),
            int(row[n]),
            int(row[n + 1]),
            row[n + 2],
            row[n + 3],
            _cited(sorted(seen.get(tuple(row[:n]), ())), known),
        )
        for row in rows
        if row[n]  # no group: an aggregate over no rows
    ]
    totals = {
        "requests": int(total[0]),
        "people": int(total[1]),
        "first": total[2],
        "last": total[3],
    }
    return sorted(out, key=lambda g: (-g.requests, json.dumps(g.group, default=str))), totals
