"""Transfers: where the requests that left, and the personal data in them, went.

The register a data-protection officer keeps of processing and of transfers to other countries
(GDPR arts. 30(1)(e) and 44-49, Australia's APP 8, Korea's PIPA art. 28-8, ...) asks, per
destination: what was sent, by whom, to which processor, processing it in which country, and
what protected the personal data in it. The gateway's outcome entries hold each of those facts
as they were when the request was made (the backend's operator, hosting country and region, the
model's origin, whether it is the organisation's own, the caller's jurisdiction, the entity
types found and the action taken on each), so the register is read from the trail, not kept
beside it.

Only requests that were **forwarded** count (a denial, a PII block and a request no backend
could take sent nothing). A request counts under **every backend it reached**: the one that
answered, and any it was sent to first that failed after the request went out (a 503, a
dropped connection: that backend holds the request too), whose facts come from the candidates
the entry's ``decision_input`` recorded and whose PII actions from its ``attempts``. A backend
that could not be reached at all (no connection, no TLS session) got nothing and does not
count. Per group: ``requests`` that reached it, ``answered`` (of those, the ones it answered),
``with_personal_data`` (the request held at least one value of a personal-data type),
``uninspectable`` (it held content the detector cannot read, which policy sends only to a
backend trusted with personal data), ``insecure`` (it went through a switch that turns a
protection off), and ``entities``: per type, per action, how many values that backend got
(``allow`` means sent as written; ``pseudonymise``, ``redact``, ``mask`` and ``hash`` replaced
before they left). ``sent_as_is`` and ``protected`` sum them. So a request that reached two
backends counts under both, and the totals count it twice (``answered`` counts it once). An
entry whose body was purged keeps its backend id but none of these facts: it counts in
``purged``, under :data:`audit.usage.PURGED`. Recorded in the audit trail like an export
(phase ``transfers``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.event import UNSENT_OUTCOMES
from audit.export import ExportFilter, Scope, scoped_query
from audit.json_sql import (
    array_length,
    count_of,
    entries,
    items,
    json_at,
    members,
    non_empty_list,
    text_at,
)
from audit.usage import GROUPS, begin_report, group_expr

__all__ = ["DEFAULT_BY", "GROUPS", "TransferRow", "totals", "transfers"]

DEFAULT_BY = ("jurisdiction", "operator", "hosting_country", "self_hosted")
# actions that change a value before it leaves; ``allow`` sends it as written
_PROTECTING = frozenset({"pseudonymise", "redact", "mask", "hash"})
_COUNTS = ("requests", "answered", "with_personal_data", "uninspectable", "insecure", "purged")


@dataclass
class TransferRow:
    group: dict[str, str | None]
    requests: int = 0
    answered: int = 0
    with_personal_data: int = 0
    uninspectable: int = 0
    insecure: int = 0
    purged: int = 0
    entities: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def sent_as_is(self) -> int:
        return sum(a.get("allow", 0) for a in self.entities.values())

    @property
    def protected(self) -> int:
        return sum(n for a in self.entities.values() for k, n in a.items() if k in _PROTECTING)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.group,
            **{k: getattr(self, k) for k in _COUNTS},
            "sent_as_is": self.sent_as_is,
            "protected": self.protected,
            "entities": self.entities,
        }


async def transfers(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str] = DEFAULT_BY,
    *,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    writer: str = "transfers:0:0",
) -> list[TransferRow]:
    """Groups the forwarded requests by ``by`` (names from :data:`audit.usage.GROUPS`, in
    order), most requests first. Authorises and records the read first
    (:class:`audit.export.AuditForbidden`; ValueError for a name that is not a group). Two
    ``GROUP BY`` queries in the database, one for the requests and one for the entity types
    (SQLite's ``json_each``, PostgreSQL's ``jsonb_each``), side by side: no body leaves it."""
    outcomes = await begin_report(
        engine, flt, scope, by, GROUPS, "transfers", allowed_roles=allowed_roles, writer=writer
    )
    dialect = engine.dialect.name
    sub = entries(dialect, scoped_query(outcomes, scope))
    e = sub.c
    forwarded = text_at(dialect, e.doc, "forwarded").in_(("true", "1"))
    common = [e.kind, e.ts, e.user, e.team, e.tenant, e.jurisdiction, e.backend, e.decision, e.doc]
    # each backend a request reached, one row each: the one that answered (a purged entry that
    # names a backend counts there, though its body no longer says it left) ...
    answered = sa.select(
        *common,
        json_at(dialect, e.doc, "backend").label("dest"),
        json_at(dialect, e.doc, "pii", "actions").label("acts"),
        sa.literal(1).label("answered"),
    ).where(sa.or_(forwarded, sa.and_(e.doc.is_(None), e.backend.is_not(None))))
    # ... and each other candidate an attempt reached before it (failed after the request went
    # out), with the facts the decision input recorded and the actions its attempt recorded
    cand = items(dialect, json_at(dialect, e.doc, "decision_input", "backends")).alias("cand")
    cid = text_at(dialect, cand.c.value, "id")

    def tried(alias: str) -> Any:
        att = items(dialect, json_at(dialect, e.doc, "attempts")).alias(alias)
        return att, sa.and_(
            text_at(dialect, att.c.value, "backend") == cid,
            text_at(dialect, att.c.value, "outcome").not_in(sorted(UNSENT_OUTCOMES)),
        )

    reached, reached_it = tried("att")
    got, got_it = tried("got")
    acts = (
        sa.select(json_at(dialect, got.c.value, "pii"))
        .select_from(got)
        .where(got_it)
        .limit(1)
        .scalar_subquery()
    )
    others = (
        sa.select(
            *common,
            cand.c.value.label("dest"),
            acts.label("acts"),
            sa.literal(0).label("answered"),
        )
        .select_from(sub.join(cand, sa.true()))
        .where(
            forwarded,
            array_length(dialect, e.doc, "attempts") > 1,  # a fallback: tried more than once
            cid != sa.func.coalesce(text_at(dialect, e.doc, "backend", "id"), ""),
            sa.exists(sa.select(sa.literal(1)).select_from(reached).where(reached_it)),
        )
    )
    d = sa.union_all(answered, others).subquery("reached")
    keys = [group_expr(b, dialect, d.c, d.c.dest).label(f"g{i}") for i, b in enumerate(by)]
    n = len(by)

    def count(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    counts = members(dialect, json_at(dialect, d.c.doc, "pii", "counts")).alias("pd")
    found = sa.exists(
        sa.select(sa.literal(1)).select_from(counts).where(count_of(dialect, counts.c.value) > 0)
    )
    body = d.c.doc.is_not(None)
    measures = [
        sa.func.count(),
        sa.func.sum(d.c.answered),
        count(sa.and_(body, found)),
        count(sa.and_(body, non_empty_list(dialect, d.c.doc, "pii", "uninspectable"))),
        count(sa.and_(body, non_empty_list(dialect, d.c.doc, "pii", "insecure"))),
        count(d.c.doc.is_(None)),
    ]
    q = sa.select(*keys, *measures).select_from(d)
    if keys:
        q = q.group_by(*keys)
    # per type and action: each destination's {TYPE: {action: n}} unnested twice
    types = members(dialect, d.c.acts).alias("t")
    per = members(dialect, types.c.value).alias("a")
    total = sa.func.sum(count_of(dialect, per.c.value))
    eq = (
        sa.select(*keys, types.c.key, per.c.key, total)
        .select_from(d.join(types, sa.true()).join(per, sa.true()))
        .group_by(*keys, types.c.key, per.c.key)
    )

    async def run(query: Any) -> Sequence[Any]:
        async with engine.connect() as conn:
            return (await conn.execute(query)).all()

    # side by side on two connections, as each reads every entry of the range: PostgreSQL runs
    # them in two server processes (half the wall time), SQLite is no quicker and no slower
    # (docs/benchmarks/audit.md). In one task group: if one fails (or the caller is cancelled),
    # the other is cancelled too; the failure is raised as itself (a database error the caller
    # maps), not as a group.
    try:
        async with asyncio.TaskGroup() as tg:
            counted, summed = tg.create_task(run(q)), tg.create_task(run(eq))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    rows, entity_rows = counted.result(), summed.result()
    out: dict[tuple[Any, ...], TransferRow] = {}
    for row in rows:
        requests, answered_n, pd, unins, insecure, purged = (int(v or 0) for v in row[n:])
        if requests:  # no group: an aggregate over no rows
            out[tuple(row[:n])] = TransferRow(
                dict(zip(by, row[:n], strict=True)),
                requests,
                answered_n,
                pd,
                unins,
                insecure,
                purged,
            )
    for row in entity_rows:
        group, entity, action, number = tuple(row[:n]), row[n], row[n + 1], int(row[n + 2] or 0)
        if number and group in out:
            out[group].entities.setdefault(entity, {})[action] = number
    for r in out.values():
        r.entities = {k: dict(sorted(v.items())) for k, v in sorted(r.entities.items())}
    return sorted(out.values(), key=lambda g: (-g.requests, json.dumps(g.group, default=str)))


def totals(rows: Sequence[TransferRow]) -> dict[str, Any]:
    """The counts summed over every group, entities included."""
    out: dict[str, Any] = dict.fromkeys(_COUNTS, 0)
    entities: dict[str, dict[str, int]] = {}
    for r in rows:
        for k in _COUNTS:
            out[k] += getattr(r, k)
        for entity, actions in r.entities.items():
            mine = entities.setdefault(entity, {})
            for action, number in actions.items():
                mine[action] = mine.get(action, 0) + number
    merged = TransferRow({}, entities=entities)
    return {
        **out,
        "sent_as_is": merged.sent_as_is,
        "protected": merged.protected,
        "entities": {k: dict(sorted(v.items())) for k, v in sorted(entities.items())},
    }
