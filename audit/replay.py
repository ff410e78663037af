"""Policy replay: re-evaluate stored decision inputs under another bundle and report the change.

For every request in the window (its ``complete`` or ``incomplete`` entry, which carries the
decision input without text and the decision taken), the new engine's output is compared with
the recorded decision: allowed/denied, permitted backends, denying rules. The report counts how
many requests would change and which users, jurisdictions, rules and backends they involve.
Inputs are replayed as recorded, ``now`` included, so date-dependent rules see the original time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.schema import audit_log

__all__ = ["ReplayReport", "replay"]

Evaluate = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


def _outcome(allow: Any, backends: Any, deny_rules: Any) -> dict[str, Any]:
    return {
        "allow": bool(allow),
        "backends": sorted(str(b) for b in backends or ()),
        "deny_rules": sorted(str(r) for r in deny_rules or ()),
    }


@dataclass
class ReplayReport:
    examined: int = 0
    changed: int = 0
    newly_denied: int = 0
    newly_allowed: int = 0
    backends_changed: int = 0
    errors: int = 0
    skipped: int = 0  # no decision input recorded (e.g. failed before the policy step)
    users: Counter[str] = field(default_factory=Counter)
    jurisdictions: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)  # rules that deny now but did not before
    backends: Counter[str] = field(default_factory=Counter)  # backends gained or lost
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "changed": self.changed,
            "newly_denied": self.newly_denied,
            "newly_allowed": self.newly_allowed,
            "backends_changed": self.backends_changed,
            "errors": self.errors,
            "skipped": self.skipped,
            "users": dict(self.users.most_common()),
            "jurisdictions": dict(self.jurisdictions.most_common()),
            "rules": dict(self.rules.most_common()),
            "backends": dict(self.backends.most_common()),
            "samples": self.samples,
        }


async def replay(
    engine: AsyncEngine,
    evaluate: Evaluate,
    since: str | None = None,
    until: str | None = None,
    page: int = 1000,
    max_samples: int = 20,
) -> ReplayReport:
    """Replay ``since <= ts < until`` (RFC 3339 UTC) through ``evaluate``."""
    report = ReplayReport()
    c = audit_log.c
    conds: list[Any] = [c.kind.in_(("complete", "incomplete")), c.body.is_not(None)]
    if since:
        conds.append(c.ts >= since)
    if until:
        conds.append(c.ts < until)
    last = 0
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(c.seq, c.body).where(*conds, c.seq > last).order_by(c.seq).limit(page)
                )
            ).all()
        if not rows:
            return report
        last = int(rows[-1].seq)
        for row in rows:
            await _one(report, json.loads(row.body), evaluate, max_samples)


async def _one(
    report: ReplayReport, event: Mapping[str, Any], evaluate: Evaluate, max_samples: int
) -> None:
    policy_input = event.get("decision_input")
    decision = event.get("decision")
    if not isinstance(policy_input, Mapping) or not isinstance(decision, Mapping):
        report.skipped += 1
        return
    report.examined += 1
    before = _outcome(
        decision.get("allow"), decision.get("permitted_backends"), decision.get("denying_rule_ids")
    )
    try:
        raw = await evaluate(policy_input)
        reasons = raw.get("reasons") or []
        after = _outcome(
            raw["allow"],
            raw.get("permitted_backends"),
            [
                r.get("rule")
                for r in reasons
                if isinstance(r, Mapping) and r.get("effect") == "deny"
            ],
        )
    except Exception:  # noqa: BLE001 - a failing evaluation is counted, the replay goes on
        report.errors += 1
        return
    if after == before:
        return
    report.changed += 1
    principal = policy_input.get("principal") or {}
    report.users[str(principal.get("user"))] += 1
    report.jurisdictions[str(principal.get("jurisdiction"))] += 1
    if before["allow"] and not after["allow"]:
        report.newly_denied += 1
    if after["allow"] and not before["allow"]:
        report.newly_allowed += 1
    for rule in set(after["deny_rules"]) - set(before["deny_rules"]):
        report.rules[rule] += 1
    moved = set(after["backends"]) ^ set(before["backends"])
    if moved:
        report.backends_changed += 1
        for b in moved:
            report.backends[b] += 1
    if len(report.samples) < max_samples:
        report.samples.append(
            {"request_id": event.get("request_id"), "before": before, "after": after}
        )
