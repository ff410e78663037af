"""The denials report over the real store (SQLite and PostgreSQL): per denying rule, the
requests it refused, the people who asked, first and last, the citations; each request once in
the totals; the reader's scope; the read recorded."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.denials import NONE, denials
from audit.export import AuditForbidden, ExportFilter, Scope
from audit.schema import audit_log
from audit.sink import DatabaseAuditSink
from audit.usage import PURGED
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration

ADMIN = Scope("admin-1", frozenset({"admin"}))
N = 120
# rule -> the government action it cites
RULES = {"au.gov.hosted_deepseek": "au-hao-2025-02-04", "kr.gov.hosted_deepseek": "kr-pipc-2025"}


WARNED = "it-garante-2025"  # a warning's citation in a denied decision: no denying rule's


def _event(i: int) -> dict[str, Any]:
    """Every third request is denied: by Australia's rule, Korea's, both, or (one in a while) a
    decision naming no rule. Even requests are recorded as since 2026-12-01 (each denying rule's
    own citations, and a warning's citation beside them), odd ones as before (the decision's
    citations only)."""
    denied = i % 3 == 0
    which = [["au.gov.hosted_deepseek"], ["kr.gov.hosted_deepseek"], list(RULES), []][i % 4]
    rules = which if denied else []
    decision: dict[str, Any] = {
        "allow": not denied,
        "permitted_backends": [] if denied else ["ds-syd"],
        "rule_ids": rules or ["base.allow"],
        "denying_rule_ids": rules,
        "citation_ids": [RULES[r] for r in rules],
        "obligations": {},
    }
    if i % 2 == 0:
        decision["denial_citations"] = {r: [RULES[r]] for r in rules}
        decision["citation_ids"] = sorted([*decision["citation_ids"], WARNED])
    return event(i, decision=decision)


def _cited(e: dict[str, Any], rule: str | None) -> set[str]:
    """What the report should credit ``rule`` (None: all the request's denying rules) with."""
    d = e["decision"]
    if "denial_citations" not in d:
        return set(d["citation_ids"])
    rules = d["denying_rule_ids"] if rule is None else [rule]
    return {c for r in rules for c in d["denial_citations"].get(r, [])}


async def _fill(sink: DatabaseAuditSink) -> list[dict[str, Any]]:
    evs = [_event(i) for i in range(N)]
    await asyncio.gather(*(sink.intent(e) for e in evs))
    await asyncio.gather(*(sink.complete(e) for e in evs))
    return evs


async def test_each_rule_its_denials_people_and_citations(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = await _fill(sink)
    known = {"au-hao-2025-02-04": {"authority": "Department of Home Affairs",
                                   "instrument": "PSPF direction 001-2025", "extra": "x"}}  # fmt: skip
    rows, totals = await denials(engine, ExportFilter(), ADMIN, ("rule",), citations=known)
    want: Counter[str] = Counter()
    people: dict[str, set[str]] = defaultdict(set)
    stamps: dict[str, list[str]] = defaultdict(list)
    denied = [e for e in evs if not e["decision"]["allow"]]
    for e in denied:
        for r in e["decision"]["denying_rule_ids"] or [NONE]:
            want[r] += 1
            people[r].add(e["principal"]["user"])
            stamps[r].append(e["ts"])
    got = {r.group["rule"]: r for r in rows}
    assert {k: r.requests for k, r in got.items()} == dict(want)
    assert {k: r.people for k, r in got.items()} == {k: len(v) for k, v in people.items()}
    assert {k: (r.first, r.last) for k, r in got.items()} == {
        k: (min(v), max(v)) for k, v in stamps.items()
    }
    # each rule's own citations where the entry keeps them (a decision two rules made credits
    # each with its own, and a warning's citation with neither), else the decision's (both
    # rules' actions under each); named from the policy data where it says something, else by id
    cited: dict[str, set[str]] = defaultdict(set)
    for e in denied:
        for r in e["decision"]["denying_rule_ids"]:
            cited[r] |= _cited(e, r)
    assert {k: [c["id"] for c in r.citations] for k, r in got.items()} == {
        k: sorted(cited.get(k, ())) for k in got
    }
    new_style = [e for e in denied if "denial_citations" in e["decision"]]
    assert any(len(e["decision"]["denying_rule_ids"]) == 2 for e in new_style)
    assert WARNED not in {c["id"] for r in rows for c in r.citations}
    assert got["au.gov.hosted_deepseek"].citations[0] == {
        "id": "au-hao-2025-02-04", "authority": "Department of Home Affairs",
        "instrument": "PSPF direction 001-2025"}  # fmt: skip
    assert {"id": "kr-pipc-2025"} in got["kr.gov.hosted_deepseek"].citations
    assert got[NONE].citations == []
    # a request two rules denied counts under each, and once in the totals
    assert totals["requests"] == len(denied) < sum(want.values())
    assert totals["people"] == len({e["principal"]["user"] for e in denied})
    # per person (an indexed column): each request once
    people_rows, _ = await denials(engine, ExportFilter(), ADMIN, ("user",))
    assert {r.group["user"]: r.requests for r in people_rows} == dict(
        Counter(e["principal"]["user"] for e in denied)
    )
    # grouped further, and filtered like an export
    by_place, _ = await denials(engine, ExportFilter(), ADMIN, ("rule", "jurisdiction"))
    assert sum(r.requests for r in by_place) == sum(want.values())
    kr, kr_totals = await denials(engine, ExportFilter(jurisdiction="KR"), ADMIN, ())
    kr_denied = [e for e in denied if e["principal"]["jurisdiction"] == "KR"]
    assert kr_totals["requests"] == len(kr_denied)
    assert [r.requests for r in kr] == [kr_totals["requests"]]
    # without the rule: each request's denying rules' citations together
    want_kr = sorted({c for e in kr_denied for c in _cited(e, None)})
    assert [c["id"] for c in kr[0].citations] == want_kr
    # a purged denial no longer names its rule
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.kind == "complete", audit_log.c.decision == "deny",
                   audit_log.c.user_id == "user0")
            .values(body=None, purged_at="2026-12-01T00:00:00.000000Z")
        )  # fmt: skip
    purged_rows, _ = await denials(engine, ExportFilter(user="user0"), ADMIN, ("rule",))
    assert [(r.group["rule"], r.requests) for r in purged_rows] == [
        (PURGED, sum(1 for e in denied if e["principal"]["user"] == "user0"))
    ]


async def test_the_readers_scope_applies_and_the_read_is_recorded(
    engine: AsyncEngine, sink: DatabaseAuditSink
) -> None:
    evs = await _fill(sink)
    it = Scope("aud-it", frozenset({"auditor"}), frozenset({"IT"}))
    rows, totals = await denials(engine, ExportFilter(), it, ("jurisdiction",))
    assert [r.group["jurisdiction"] for r in rows] == ["IT"]
    assert totals["requests"] == sum(
        1 for e in evs if not e["decision"]["allow"] and e["principal"]["jurisdiction"] == "IT"
    )
    with pytest.raises(AuditForbidden):
        await denials(engine, ExportFilter(), Scope("u", frozenset({"user"})), ())
    with pytest.raises(ValueError, match="by"):
        await denials(engine, ExportFilter(), ADMIN, ("rule", "rule"))
    async with engine.connect() as conn:
        bodies = (
            (await conn.execute(sa.select(audit_log.c.body).where(audit_log.c.kind == "export")))
            .scalars()
            .all()
        )
    assert len(bodies) == 1 and '"denials"' in bodies[0] and '"aud-it"' in bodies[0]
