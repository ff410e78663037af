"""An intent's normalised shared fields, reused for its completion, give the very same entry."""

from __future__ import annotations

from typing import Any

import pytest

from audit.store import make_entry, static_part

PRINCIPAL = {
    "key_id": "k1",
    "user": "alice",
    "team": None,
    "tenant": "acme",
    "jurisdiction": "EU",
    "country": "DE",
    "subdivision": None,
    "sector": "health",
    "roles": ["r1"],
    "tags": [],
}
DECISION = {
    "allow": True,
    "permitted_backends": ["b1"],
    "rule_ids": ["eu.gdpr.1"],
    "denying_rule_ids": [],
    "citation_ids": ["c-9"],
    "obligations": {"retention_class": "standard", "content_capture": False},
}
DECISION_INPUT = {
    "version": "1",
    "phase": "route",
    "now": "2026-11-29T05:14:19Z",
    "principal": PRINCIPAL,
    "request": {"endpoint": "chat", "model": "m", "stream": False, "tools": False},
    "backends": [{"id": "b1", "operator": "openai", "models": ["m"], "retention": {"days": 30}}],
    "pii": None,
    "deployment": {"self_hosted_stance": "cautious"},
}


def _event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "request_id": "req_1",
        "ts": "2026-11-29T05:14:19.5Z",
        "endpoint": "chat",
        "principal": PRINCIPAL,
        "model": "m",
        "stream": False,
        "backend": None,
        "attempts": [],
        "decision": DECISION,
        "bundle_revision": "sha256:abc",
        "config_hash": "0123456789abcdef",
        "decision_input": DECISION_INPUT,
        "pii": {"counts": {}, "actions": {}, "output": {}},
        "usage": {},
        "latency_ms": {"total": 1.5, "policy": 0.01},
        "status": 0,
        "error_code": None,
        "client_address": "127.0.0.1",
        "digests": {"key_id": "k", "prompt": "ab" * 32, "answer": None},
        "forwarded": False,
    }
    ev.update(over)
    return ev


COMPLETIONS = [
    ("plain outcome", {"status": 200, "usage": {"total_tokens": 5}, "forwarded": True}),
    ("content in a changing field is still stripped", {"error_code": "mail me at a@b.example"}),
    ("unknown top-level key counted as stripped", {"prompt": "secret text"}),
    (
        "backend facts and attempts",
        {
            "backend": {"id": "b1", "models": ["m"]},
            "attempts": [{"backend": "b1", "outcome": "ok", "status": None}],
        },
    ),
    ("equal but new principal object falls back", {"principal": dict(PRINCIPAL)}),
    ("different config hash falls back", {"config_hash": "fedcba9876543210"}),
    ("bool where the intent had a string falls back", {"bundle_revision": True}),
    ("missing time is filled in", {"ts": None}),
]


@pytest.mark.parametrize(("name", "changes"), COMPLETIONS, ids=[c[0] for c in COMPLETIONS])
def test_completion_with_reused_intent_fields_equals_full_normalisation(
    name: str, changes: dict[str, Any]
) -> None:
    intent = _event(principal={**PRINCIPAL, "user": "x\ny"})  # one stripped shared value
    static = static_part(intent)
    assert make_entry("intent", intent, "w", static).row == make_entry("intent", intent, "w").row
    done = {**intent, **changes}
    reused = make_entry("complete", done, "w", static).row
    full = make_entry("complete", done, "w").row
    if changes.get("ts", "") is None:  # both filled with "now": equal apart from the time
        reused.pop("ts"), full.pop("ts")
        assert reused["body"].count('"ts":"') == 1
        reused.pop("body"), full.pop("body"), reused.pop("leaf_hash"), full.pop("leaf_hash")
    assert reused == full


def test_reuse_refuses_an_unknown_kind() -> None:
    ev = _event()
    with pytest.raises(ValueError, match="unknown audit event kind"):
        make_entry("bogus", ev, "w", static_part(ev))
