"""The transfers register over the real store (SQLite and PostgreSQL): only what was forwarded
counts, grouped by where it went as the entries recorded it; the personal data per type and
action equals what the events said; purged bodies, the reader's scope and the recorded read."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from audit.transfers import totals, transfers
from audit.usage import PURGED, usage
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
N = 150
# where a forwarded request went: (id, operator, hosting country, model origin, self-hosted)
BACKENDS = (
    ("ds-hosted", "deepseek", "CN", "CN", False),
    ("ds-syd", "self", "AU", "CN", True),
    ("azure-se", "microsoft", "SE", "US", False),
)


def _facts(j: int) -> dict[str, Any]:
    ident, operator, country, origin, own = BACKENDS[j % 3]
    return {"id": ident, "operator": operator, "hosting_country": country,
            "model_origin": origin, "self_hosted": own}  # fmt: skip


def _actions(own: bool, people: int, emails: int) -> dict[str, dict[str, int]]:
    """The organisation's own backend gets names as written and e-mail addresses redacted; the
    others get pseudonyms."""
    out: dict[str, dict[str, int]] = {}
    if people:
        out["PERSON"] = {"allow" if own else "pseudonymise": people}
    if emails:
        out["EMAIL_ADDRESS"] = {"redact" if own else "pseudonymise": emails}
    return out


def _event(i: int) -> dict[str, Any]:
    """Request ``i``: denied every fifth; of the rest, every seventh failed to connect (nothing
    sent); the others sent to one of three backends with personal data in some. Every tenth
    (from the third) first reached the next backend, which failed after it had the request;
    every tenth (from the seventh) first tried one it could not reach."""
    here = _facts(i)
    denied, unsent = i % 5 == 0, i % 7 == 0
    people, emails = i % 4, i % 2
    pii: dict[str, Any] = {
        "counts": {"PERSON": people, "EMAIL_ADDRESS": emails},
        "actions": _actions(here["self_hosted"], people, emails),
    }
    if i % 6 == 1:
        pii["uninspectable"] = ["image_url"]
    nxt = _facts(i + 1)
    attempts: list[dict[str, Any]] = [{"backend": here["id"], "outcome": "ok", "status": 200}]
    if i % 10 == 3:
        got = _actions(nxt["self_hosted"], people, emails)
        attempts.insert(0, {"backend": nxt["id"], "outcome": "status", "status": 503, "pii": got})
    elif i % 10 == 7:
        attempts.insert(0, {"backend": nxt["id"], "outcome": "connect", "status": None})
    ev = event(
        i,
        attempts=attempts,
        backend=None if denied else here,
        decision={
            "allow": not denied,
            "permitted_backends": [] if denied else [b[0] for b in BACKENDS],
            "rule_ids": ["r"],
            "denying_rule_ids": ["r"] if denied else [],
            "citation_ids": [],
            "obligations": {},
        },
        pii=pii,
        forwarded=not (denied or unsent),
        status=403 if denied else (502 if unsent else 200),
    )
    ev["decision_input"]["backends"] = [_facts(j) for j in range(3)]
    return ev


def _reached(e: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """Where a forwarded request went: the backend that answered, and one it reached first."""
    out = [(e["backend"], e["pii"]["actions"], 1)]
    first = e["attempts"][0]
    if first["outcome"] == "status":
        facts = next(b for b in e["decision_input"]["backends"] if b["id"] == first["backend"])
        out.append((facts, first["pii"], 0))
    return out


async def _fill(sink: DatabaseAuditSink) -> list[dict[str, Any]]:
    evs = [_event(i) for i in range(N)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))
    return evs


async def test_only_what_left_counts_grouped_by_where_it_went(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = await _fill(sink)
    by = ("jurisdiction", "operator", "hosting_country", "self_hosted", "cross_border")
    rows = await transfers(engine, ExportFilter(), ADMIN, by)
    want: Counter[tuple[Any, ...]] = Counter()
    answered: Counter[tuple[Any, ...]] = Counter()
    with_pd: Counter[tuple[Any, ...]] = Counter()
    unins: Counter[tuple[Any, ...]] = Counter()
    entities: dict[tuple[Any, ...], dict[str, Counter[str]]] = defaultdict(
        lambda: defaultdict(Counter)
    )
    for e in evs:
        if not e["forwarded"]:
            continue
        p = e["principal"]
        for b, acts, answer in _reached(e):
            k = (
                p["jurisdiction"],
                b["operator"],
                b["hosting_country"],
                "true" if b["self_hosted"] else "false",
                "false" if p["country"] == b["hosting_country"] else "true",
            )
            want[k] += 1
            answered[k] += answer
            with_pd[k] += any(e["pii"]["counts"].values())
            unins[k] += bool(e["pii"].get("uninspectable"))
            for entity, per in acts.items():
                entities[k][entity].update(per)
    got = {tuple(r.group[g] for g in by): r for r in rows}
    assert {k: r.requests for k, r in got.items()} == dict(want)
    assert {k: r.answered for k, r in got.items()} == dict(answered)
    assert sum(want.values()) > sum(answered.values())  # some reached two backends
    assert {k: r.with_personal_data for k, r in got.items()} == dict(with_pd)
    assert {k: r.uninspectable for k, r in got.items()} == dict(unins)
    assert {k: r.entities for k, r in got.items()} == {
        k: {t: dict(a) for t, a in v.items()} for k, v in entities.items()
    }
    # a New South Wales request to the organisation's own Sydney backend stays at home; an
    # Australian's to DeepSeek's own service goes to China, pseudonymised
    home = got[("AU-NSW", "self", "AU", "true", "false")]
    assert home.sent_as_is == home.entities["PERSON"]["allow"] > 0
    assert home.protected == home.entities["EMAIL_ADDRESS"]["redact"] > 0
    abroad = got[("AU-NSW", "deepseek", "CN", "false", "true")]
    assert abroad.sent_as_is == 0 and abroad.protected > 0
    sent = sum(1 for e in evs if e["forwarded"])
    total = totals(rows)
    assert total["answered"] == sent < total["requests"] == sum(len(_reached(e)) for e in evs
                                                                if e["forwarded"])  # fmt: skip
    assert total["sent_as_is"] + total["protected"] == sum(
        n
        for e in evs
        if e["forwarded"]
        for _, acts, _ in _reached(e)
        for a in acts.values()
        for n in a.values()
    )
    assert [r.requests for r in rows] == sorted((r.requests for r in rows), reverse=True)
    # by the indexed columns too: each person's requests, under each backend they reached
    people = await transfers(engine, ExportFilter(), ADMIN, ("user", "tenant", "backend"))
    per_person: Counter[tuple[Any, Any]] = Counter()
    for r in people:  # summed over the tenants
        per_person[(r.group["user"], r.group["backend"])] += r.requests
    assert per_person == Counter(
        (e["principal"]["user"], b["id"]) for e in evs if e["forwarded"] for b, _, _ in _reached(e)
    )
    # the same groups are open to the usage report, which counts denials too
    (one,) = await usage(engine, ExportFilter(backend="azure-se"), ADMIN, ("hosting_country",))
    assert one.group["hosting_country"] == "SE" and one.forwarded == sum(
        1 for e in evs if e["forwarded"] and e["backend"]["id"] == "azure-se"
    )


async def test_filters_purged_bodies_scope_and_the_recorded_read(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = await _fill(sink)
    kr = Scope("aud-kr", frozenset({"auditor"}), frozenset({"KR"}))
    mine = await transfers(engine, ExportFilter(), kr, ("jurisdiction",))
    assert [r.group["jurisdiction"] for r in mine] == ["KR"]
    assert mine[0].requests == sum(
        1 for e in evs if e["forwarded"] and e["principal"]["jurisdiction"] == "KR"
    )
    (all_time,) = await transfers(engine, ExportFilter(), ADMIN, ())
    since = await transfers(engine, ExportFilter(since="2026-11-15T00:00:00.000000Z"), ADMIN, ())
    assert 0 < since[0].requests < all_time.requests
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.kind == "complete", audit_log.c.backend == "azure-se")
            .values(body=None, purged_at="2026-12-01T00:00:00.000000Z")
        )
    rows = await transfers(engine, ExportFilter(backend="azure-se"), ADMIN, ("backend", "operator"))
    # a purged entry that had a backend counts, though its body no longer says it left
    azure = [e for e in evs if e["backend"] and e["backend"]["id"] == "azure-se"]
    assert [(r.group["operator"], r.purged, r.requests) for r in rows] == [
        (PURGED, len(azure), len(azure))
    ]
    assert rows[0].entities == {} and rows[0].with_personal_data == 0
    with pytest.raises(AuditForbidden):
        await transfers(engine, ExportFilter(), Scope("u", frozenset({"user"})), ())
    with pytest.raises(ValueError, match="by"):
        await transfers(engine, ExportFilter(), ADMIN, ("colour",))
    async with engine.connect() as conn:
        bodies = (
            (await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.kind == "export")))
            .scalars()
            .all()
        )
    # four reports, each recorded; the refused and the malformed ones read nothing
    assert len(bodies) == 4 and all('"transfers"' in b for b in bodies)
    assert any('"aud-kr"' in b for b in bodies)


async def test_a_database_error_surfaces_as_itself_not_as_a_group(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    """The two queries run side by side in a task group; the caller (the admin route maps a
    database error to a 503) gets the database's error, not an ExceptionGroup."""
    await _fill(sink)
    async with engine.begin() as conn:  # a body no JSON reader accepts
        await conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.kind == "complete", audit_log.c.seq == N + 1)
            .values(body="{not json")
        )
    with pytest.raises(sa.exc.DBAPIError):
        await transfers(engine, ExportFilter(), ADMIN)
