"""The decision scenario table through the embedded engine and the contract's parser."""

from __future__ import annotations

import pytest

from gateway.policy.contract import PiiAction, parse_decision
from tests.policy_fixtures.engines import bundle_for, evaluate
from tests.policy_fixtures.scenarios import SCENARIOS, Scenario, rule_id


def _reasons(decision_reasons: object, effect: str) -> set[str]:
    return {r.rule for r in decision_reasons if r.effect == effect}  # type: ignore[attr-defined]


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_decision(s: Scenario) -> None:
    raw = evaluate(s)
    d = parse_decision(raw, s.backends)
    assert set(d.permitted_backends) == s.permitted
    assert d.allow is bool(s.permitted)
    assert _reasons(d.reasons, "deny") == {rule_id(r) for r in s.deny}
    assert _reasons(d.reasons, "warn") == {rule_id(r) for r in s.warn}
    assert _reasons(d.reasons, "info") == {rule_id(r) for r in s.info}
    assert d.bundle_revision == bundle_for(s.overlays).revision
    assert set(d.pii_actions) == s.permitted
    if s.pii_actions is not None:
        expected = {b: {e: PiiAction(a) for e, a in m.items()} for b, m in s.pii_actions.items()}
        assert {b: dict(m) for b, m in d.pii_actions.items()} == {
            b: m for b, m in expected.items() if b in s.permitted
        }
    else:  # Axiom 6: pseudonymise on anything not self-hosted, allow on self-hosted
        for b in d.permitted_backends:
            want = PiiAction.ALLOW if b == "deepseek-self" else PiiAction.PSEUDONYMISE
            assert d.pii_actions[b] == {"*": want}
    assert dict(d.obligations) == (
        s.obligations
        or {
            "content_capture": False,
            "retention_class": "standard",
            "redact_new_pii": False,
            "strict_pii": False,
        }
    )


def test_every_deny_names_backends_and_cites_its_source() -> None:
    for s in SCENARIOS:
        d = parse_decision(evaluate(s), s.backends)
        for r in d.reasons:
            if r.rule.startswith(("portcullis.", "overlay.")):
                continue
            assert r.backends, r.rule
            assert r.citation is not None and r.citation.url and r.citation.authority
            assert r.citation.action_id and r.citation.action_id in r.rule
            assert r.citation.confidence in ("high", "medium", "low")


def test_an_advisory_never_denies() -> None:
    # Every warn/info action of the reference appears in some scenario; none of them denies.
    import json

    from gateway.policy.bundle import default_bundle_dir

    actions = json.loads((default_bundle_dir() / "data" / "actions.json").read_text())
    advisory = {a["id"] for a in actions if a["effect"] != "deny"}
    for s in SCENARIOS:
        d = parse_decision(evaluate(s), s.backends)
        for r in d.denials:
            assert not r.citation or r.citation.action_id not in advisory, r.rule


def test_scenarios_cover_every_jurisdiction_of_the_reference() -> None:
    import json

    from gateway.policy.bundle import default_bundle_dir

    actions = json.loads((default_bundle_dir() / "data" / "actions.json").read_text())
    countries = {a["country"] for a in actions} - {"EU"}
    covered = {s.jurisdiction.split("-")[0] for s in SCENARIOS}
    assert countries <= covered
    sectors = {s.sector for s in SCENARIOS}
    from gateway.principal import SECTORS

    assert set(SECTORS) <= sectors
