"""Usage from the audit trail: requests, outcomes and tokens per user, team, model, day, ...

Read from the outcome entries (``complete``, and ``incomplete`` for a request whose process died),
one per request, with the export's filters and the reader's scope (an auditor sees the
jurisdictions it may export). Each group counts its requests, those denied by policy, those
allowed that failed (status 400 and above), those forwarded to a backend, those answered though
a limit or budget in shadow mode would have refused them (``shadowed``), and the tokens the
backends reported, with their cost where the backend has a price (``cost_microusd``,
micro-dollars). An entry whose body was purged keeps its columns (user, team, jurisdiction,
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
from audit.json_sql import COLUMNS, entries, non_empty_list, number_at, text_at

__all__ = ["GROUPS", "UsageRow", "begin_report", "group_expr", "totals", "usage"]

# What a report may be grouped by: the entry's own fields (as the export's filters read them),
# and the facts of the backend that answered as the entry recorded them (not as the catalogue
# says today): its operator, where it processed the data, the model's origin, whether it is
# the organisation's own; ``cross_border`` is whether that country is not the caller's.
GROUPS = ("user", "team", "tenant", "jurisdiction", "country", "sector", "backend", "model",
          "endpoint", "decision", "key", "operator", "hosting_country", "hosting_region",
          "model_origin", "self_hosted", "cross_border", "day", "month")  # fmt: skip
# the groups read from the entry's body, and where
_PATHS = {
    "model": ("model",),
    "endpoint": ("endpoint",),
    "key": ("principal", "key_id"),
    "country": ("principal", "country"),
    "sector": ("principal", "sector"),
}
# the groups that are facts of the backend (read from the entry's ``backend`` object)
_FACTS = ("operator", "hosting_country", "hosting_region", "model_origin")
_OUTCOMES = ("complete", "incomplete")
PURGED = "(purged)"
# Summed per group: the tokens the backends reported, and what they cost where a backend has a
# price (micro-dollars).
_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_microusd")


@dataclass
class UsageRow:
    group: dict[str, str | None]
    requests: int = 0
    denied: int = 0
    failed: int = 0
    forwarded: int = 0
    purged: int = 0
    # answered though a limit or budget in shadow mode would have refused them (``shadowed``)
    shadowed: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOKENS, 0))

    def to_json(self) -> dict[str, Any]:
        return {
            **self.group,
            "requests": self.requests,
            "denied": self.denied,
            "failed": self.failed,
            "forwarded": self.forwarded,
            "purged": self.purged,
            "shadowed": self.shadowed,
            **self.tokens,
        }


def _truth(dialect: str, text: Any) -> Any:
    """A JSON boolean read as text (SQLite's ``1``/``0``, PostgreSQL's ``true``/``false``) as
    ``true``/``false``; NULL when absent."""
    return sa.case((text.in_(("true", "1")), "true"), (text.in_(("false", "0")), "false"))


def group_expr(name: str, dialect: str, row: Any, dest: Any = None) -> Any:
    """The SQL expression of group ``name`` over a subquery's ``row`` (with the indexed columns,
    ``ts`` and the parsed body as ``doc``). A purged body has no fields: :data:`PURGED`. The
    backend's facts (``backend``, ``operator``, ``hosting_country``, ...) are read from ``dest``
    when given (a JSON object: the transfers register's destination, which may be a backend the
    request reached before the one that answered), else from the entry's ``backend``."""

    def fact(field: str) -> Any:
        if dest is not None:
            return text_at(dialect, dest, field)
        return text_at(dialect, row.doc, "backend", field)

    if name == "day":
        return sa.func.substr(row.ts, 1, 10)
    if name == "month":
        return sa.func.substr(row.ts, 1, 7)
    if name == "backend" and dest is not None:
        value = fact("id")
    elif name in COLUMNS:
        return row[name]
    elif name == "self_hosted":
        value = _truth(dialect, fact("self_hosted"))
    elif name == "cross_border":
        here = text_at(dialect, row.doc, "principal", "country")
        there = fact("hosting_country")
        value = sa.case(
            (sa.or_(here.is_(None), there.is_(None)), None),
            (here == there, "false"),
            else_="true",
        )
    elif name in _FACTS:
        value = fact(name)
    else:
        value = text_at(dialect, row.doc, *_PATHS[name])
    return sa.case((row.doc.is_(None), PURGED), else_=value)


async def begin_report(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str],
    groups: Sequence[str],
    phase: str,
    *,
    allowed_roles: tuple[str, ...] | frozenset[str],
    writer: str,
    decision: str | None = None,
) -> ExportFilter:
    """What every report does first: authorise the reader (:class:`audit.export.AuditForbidden`),
    check ``by`` against ``groups`` (ValueError), record the read (an ``export`` entry with
    ``phase``); then the filter of the requests' outcome entries it reads (one per request:
    ``complete``, and ``incomplete`` for one whose process died), of ``decision`` if given."""
    scope.authorise(allowed_roles)
    unknown = [b for b in by if b not in groups]
    if unknown or len(set(by)) != len(by):
        raise ValueError(f"by: distinct names from {', '.join(groups)}")
    await record_read(engine, writer, scope, flt, {"phase": phase, "by": "+".join(by) or "all"})
    narrow: dict[str, Any] = {"kinds": _OUTCOMES}
    if decision is not None:
        narrow["decision"] = decision
    return ExportFilter(**{**flt.to_json(), **narrow})


async def usage(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str],
    *,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    writer: str = "usage:0:0",
) -> list[UsageRow]:
    """Groups by ``by`` (names from :data:`GROUPS`, in order), most requests first. Authorises
    and records the read first (:class:`audit.export.AuditForbidden`, ValueError for a name
    that is not a group). One ``GROUP BY`` in the database (SQLite's ``json_extract``,
    PostgreSQL's ``jsonb``): no body leaves it."""
    outcomes = await begin_report(
        engine, flt, scope, by, GROUPS, "usage", allowed_roles=allowed_roles, writer=writer
    )
    dialect = engine.dialect.name
    e = entries(dialect, scoped_query(outcomes, scope)).c
    denied = e.decision == "deny"
    status = number_at(dialect, e.doc, "status")
    forwarded = text_at(dialect, e.doc, "forwarded")
    keys = [group_expr(b, dialect, e).label(f"g{i}") for i, b in enumerate(by)]

    def count(condition: Any) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    measures = [
        sa.func.count(),
        count(denied),
        # allowed and answered 400 or above, or never answered (the process died: incomplete)
        count(
            sa.or_(
                e.kind == "incomplete",
                sa.and_(e.doc.is_not(None), sa.or_(e.decision.is_(None), ~denied), status >= 400),
            )
        ),
        count(forwarded.in_(("true", "1"))),
        count(e.doc.is_(None)),
        count(non_empty_list(dialect, e.doc, "shadowed")),
        *(sa.func.sum(number_at(dialect, e.doc, "usage", t)) for t in _TOKENS),
    ]
    q = sa.select(*keys, *measures)
    if keys:
        q = q.group_by(*keys)
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    out = []
    for row in rows:
        n = len(by)
        requests, den, failed, fwd, purged, shadowed, *tokens = (int(v or 0) for v in row[n:])
        if not requests:
            continue  # no group: an aggregate over no rows
        out.append(
            UsageRow(
                dict(zip(by, row[:n], strict=True)),
                requests,
                den,
                failed,
                fwd,
                purged,
                shadowed,
                dict(zip(_TOKENS, tokens, strict=True)),
            )
        )
    return sorted(out, key=lambda g: (-g.requests, json.dumps(g.group, default=str)))


def totals(rows: Sequence[UsageRow]) -> dict[str, int]:
    """The columns summed over every group."""
    out = {"requests": 0, "denied": 0, "failed": 0, "forwarded": 0, "purged": 0, "shadowed": 0}
    out |= dict.fromkeys(_TOKENS, 0)
    for r in rows:
        for k, v in r.to_json().items():
            if k in out:
                out[k] += v
    return out
