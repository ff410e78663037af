"""The data-subject search: which requests held a given person's data, and where they went.

A person asks (GDPR art. 15, APP 12, PIPA art. 35) or a breach is being scoped: was this tax file
number, this e-mail address, this name sent to a model, to whom, and what was done to it? The
gateway keeps no value, but each request's record keeps a keyed digest of every value the PII
guard found in it (``pii.subjects``: :func:`gateway.pii.actions.subject_digest`, under a key
outside the database). The caller computes the value's digests, one per type it may have been
read as, and :func:`find_subject` returns the requests whose records hold any of them: when, who
asked, what was decided, what was done to the value, and every backend the request reached (the
one that answered, and any it was sent to first that failed after sending). A value the backend's
answer brought that the prompt did not hold (personal data the model wrote: ``pii.output``) is
kept too (``pii.output_subjects``) and found as such (``in_answer``).

The search reads the outcome entries of the period and the reader's scope, and is recorded in
the trail like every other read (an ``export`` entry, ``phase: subject``, with the types searched
and never a value or a digest). Requests refused before their content was inspected (a denial
that needed no inspection), and records purged by retention, hold no digest and are not found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.event import UNSENT_OUTCOMES
from audit.export import ExportFilter, Scope, record_read, scoped_query
from audit.json_sql import entries, json_at, strings, text_at

__all__ = ["MAX_MATCHES", "SubjectMatch", "find_subject"]

MAX_MATCHES = 1000  # the newest this many; the answer says when there were more


@dataclass
class SubjectMatch:
    request_id: str | None
    ts: str
    user: str | None
    team: str | None
    jurisdiction: str | None
    model: str | None
    decision: str | None
    status: int | None
    error_code: str | None  # pii_blocked: the value was found and policy kept it in
    forwarded: bool
    types: list[str] = field(default_factory=list)  # the types the value was found under
    # the types it was found under in the answer, where the backend wrote it and the prompt did
    # not hold it (pii.output_subjects: since 2026-12-01, the nineteenth session)
    in_answer: list[str] = field(default_factory=list)
    # each backend the request reached, with its facts and what was done to the value there
    reached: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_FACTS = ("id", "operator", "hosting_country", "hosting_region", "self_hosted", "model_origin")


def _reached(doc: Mapping[str, Any]) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
    """Every backend the request reached, with its facts, and the actions taken on the body it
    got ({TYPE: {action: n}}): the one that answered (the record's ``pii.actions``), then each
    it was sent to that failed after sending (its attempt's ``pii``), as the transfers register
    counts them."""
    known = {
        b.get("id"): b
        for b in (doc.get("decision_input") or {}).get("backends") or []
        if isinstance(b, Mapping)
    }
    out: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    answered = doc.get("backend") if doc.get("forwarded") else None
    if isinstance(answered, Mapping) and answered.get("id") is not None:
        facts = {k: answered.get(k) for k in _FACTS} | {"answered": True}
        out.append((facts, (doc.get("pii") or {}).get("actions") or {}))
    for attempt in doc.get("attempts") or []:
        if not isinstance(attempt, Mapping) or attempt.get("outcome") == "ok":
            continue
        if attempt.get("outcome") in UNSENT_OUTCOMES:
            continue
        other = known.get(attempt.get("backend")) or {"id": attempt.get("backend")}
        out.append(
            ({k: other.get(k) for k in _FACTS} | {"answered": False}, attempt.get("pii") or {})
        )
    return out


async def find_subject(
    engine: AsyncEngine,
    digests: Mapping[str, str],
    flt: ExportFilter,
    scope: Scope,
    *,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    writer: str = "subject:0:0",
    limit: int = MAX_MATCHES,
) -> tuple[list[SubjectMatch], dict[str, Any]]:
    """The requests in ``flt`` and ``scope`` whose records hold any of ``digests`` (digest ->
    the type it was computed for), newest first, at most ``limit``; and the totals. Authorises
    and records the read first (:class:`audit.export.AuditForbidden`)."""
    scope.authorise(allowed_roles)
    types = "+".join(sorted(set(digests.values())))
    searched = {
        "types": types if len(types) <= 200 else "many",
        "type_count": len(set(digests.values())),
    }
    await record_read(engine, writer, scope, flt, {"phase": "subject", **searched})
    if not digests:
        return [], {"requests": 0, "forwarded": 0, "truncated": False}
    dialect = engine.dialect.name
    outcomes = ExportFilter(**{**flt.to_json(), "kinds": ("complete", "incomplete")})
    sub = entries(dialect, scoped_query(outcomes, scope))
    e = sub.c
    wanted = sorted(digests)
    held = sa.or_(
        *(
            sa.exists(sa.select(sa.literal(1)).select_from(kept).where(kept.c.value.in_(wanted)))
            for kept in (
                strings(dialect, json_at(dialect, e.doc, "pii", name)).alias(f"found_{name}")
                for name in ("subjects", "output_subjects")
            )
        )
    )
    rid = text_at(dialect, e.doc, "request_id").label("rid")
    # the newest matching requests, one row each (a request has one outcome entry)
    # and how many there are in all: a window over the matches, counted before the LIMIT, so
    # the range is read once
    total_col = sa.func.count().over().label("total")
    q = (
        sa.select(rid, e.ts, e.user, e.team, e.jurisdiction, e.decision, e.doc, total_col)
        .select_from(sub)
        .where(held)
        .order_by(e.ts.desc(), rid)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    total = int(rows[0][-1]) if rows else 0
    matches = []
    for request_id, ts, user, team, jurisdiction, decision, doc, _ in rows:
        body = doc if isinstance(doc, Mapping) else _parsed(doc)
        pii = body.get("pii")
        pii = pii if isinstance(pii, Mapping) else {}
        held_types = _types(digests, pii.get("subjects"))
        answer_types = _types(digests, pii.get("output_subjects"))
        match = SubjectMatch(
            request_id, ts, user, team, jurisdiction, body.get("model"), decision,
            body.get("status"), body.get("error_code"), bool(body.get("forwarded")), held_types,
            answer_types,
        )  # fmt: skip
        match.reached = [
            facts
            | {
                "actions": {
                    t: dict(acted[t]) for t in held_types if isinstance(acted.get(t), Mapping)
                }
            }
            for facts, acted in _reached(body)
        ]
        matches.append(match)
    totals = {
        "requests": total,
        "forwarded": sum(1 for m in matches if m.forwarded),
        "truncated": total > len(matches),
    }
    return matches, totals


def _types(digests: Mapping[str, str], kept: Any) -> list[str]:
    """The types the value was found under: those of its digests a record's list holds."""
    return sorted({digests[d] for d in kept or () if d in digests})


def _parsed(doc: Any) -> dict[str, Any]:
    """SQLite hands the body back as text; PostgreSQL's jsonb as a dict."""
    try:
        value = json.loads(doc) if isinstance(doc, str | bytes) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
