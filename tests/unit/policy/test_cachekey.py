"""Decision cache keys: only what the bundle reads, and never less."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gateway.policy.cachekey import FULL, plan_for_modules
from tests.policy_fixtures.engines import bundle_for, engine_for, input_for
from tests.policy_fixtures.scenarios import SCENARIOS


def test_shipped_pack_reads_only_decision_relevant_paths() -> None:
    plan = plan_for_modules(bundle_for(()).modules)
    assert plan.paths == (
        ("backends",),
        ("deployment", "self_hosted_stance"),
        ("now",),
        ("principal", "country"),
        ("principal", "sector"),
        ("principal", "subdivision"),
        ("request", "marking"),
        ("version",),
    )
    assert plan.now_by_day


def test_overlays_add_the_paths_they_read() -> None:
    plan = plan_for_modules(bundle_for(("legal_self_hosted", "eu_personal_data")).modules)
    assert plan.paths is not None
    assert {("principal", "team"), ("phase",), ("pii", "entities")} <= set(plan.paths)


SCANS = [
    (
        "comment-and-string-ignored",
        '# input.user\nx := "input.key_id" if input.a.b.c',
        (("a", "b"),),
        True,
    ),
    ("bare-input-means-whole", 'x := object.get(input, ["a"], 1)', None, False),
    ("dynamic-index-keeps-prefix", "x := input.a[k]", (("a",),), True),
    ("prefix-covers-longer-path", "x if { input.a; input.a.b }", (("a",),), True),
    (
        "now-read-elsewhere-keeps-full-time",
        "x if time.parse_rfc3339_ns(input.now) > 0",
        (("now",),),
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "paths", "by_day"), [(t, p, d) for _, t, p, d in SCANS], ids=[n for n, *_ in SCANS]
)
def test_scanner(text: str, paths: object, by_day: bool) -> None:
    plan = plan_for_modules([("overlay/x/x.rego", "package portcullis.overlay.x\n" + text)])
    assert plan.paths == paths
    assert plan.now_by_day is by_day


def _unread_mutations(inp: dict[str, Any]) -> list[dict[str, Any]]:
    """The same input with fields the shipped pack does not read changed."""
    out = []
    for path, value in [
        (("principal", "user"), "someone-else"),
        (("principal", "key_id"), "key-2"),
        (("principal", "team"), "legal"),
        (("principal", "roles"), ["admin"]),
        (("request", "model"), "other"),
        (("request", "stream"), True),
        (("pii",), {"entities": {"KR_RRN": 3}}),
        (("phase",), "final"),
        (("now",), inp["now"][:11] + "23:59:59Z"),
    ]:
        m = copy.deepcopy(inp)
        target = m
        for seg in path[:-1]:
            target = target[seg]
        target[path[-1]] = value
        out.append(m)
    return out


@pytest.mark.parametrize("s", [s for s in SCENARIOS if not s.overlays], ids=lambda s: s.name)
def test_fields_outside_the_key_never_change_a_decision(s: object) -> None:
    """Soundness of the narrow key for the shipped pack: equal key, equal decision."""
    engine = engine_for(())
    base = input_for(s)  # type: ignore[arg-type]
    plan = engine.key_plan
    expected = engine.evaluate_sync(json.dumps(base))
    for m in _unread_mutations(base):
        assert plan.body(m) == plan.body(base)
        assert engine.evaluate_sync(json.dumps(m)) == expected


def test_day_change_and_read_fields_change_the_key() -> None:
    plan = engine_for(()).key_plan
    base = input_for(SCENARIOS[0])
    for path, value in [
        (("principal", "sector"), "private"),
        (("principal", "country"), "KR"),
        (("deployment", "self_hosted_stance"), "permit"),
        (("now",), "2026-11-30T00:00:00Z"),
    ]:
        m = copy.deepcopy(base)
        target = m
        for seg in path[:-1]:
            target = target[seg]
        target[path[-1]] = value
        assert plan.body(m) != plan.body(base), path


def test_malformed_time_is_not_bucketed_by_day() -> None:
    plan = engine_for(()).key_plan
    base = input_for(SCENARIOS[0])
    bad = {**base, "now": base["now"][:10] + "Tnonsense"}
    assert plan.body(bad) != plan.body(base)


def test_full_plan_keys_every_field() -> None:
    base = input_for(SCENARIOS[0])
    other = copy.deepcopy(base)
    other["principal"]["user"] = "someone-else"
    assert FULL.body(other) != FULL.body(base)
