"""The audit fast paths give the very bytes of the reference path: read-only views whose
normalised form is memoised (``Fixed``), and msgspec encoding of normalised bodies."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from audit.canonical import canonical_bytes, encode_normalised
from audit.event import Fixed, normalise, normalise_exotic
from audit.store import make_entry, static_part
from tests.unit.audit.test_static_reuse import DECISION, DECISION_INPUT, PRINCIPAL, _event


def _fixed(v: Any) -> Any:
    """``v`` with every mapping a Fixed and every list a tuple (as the gateway's views are)."""
    if isinstance(v, dict):
        return Fixed({k: _fixed(x) for k, x in v.items()})
    if isinstance(v, list):
        return tuple(_fixed(x) for x in v)
    return v


def _with_fixed_views(ev: dict[str, Any]) -> dict[str, Any]:
    out = dict(ev)
    for k in ("principal", "decision", "backend"):
        out[k] = _fixed(ev[k])
    di = dict(ev["decision_input"])
    di["principal"] = (
        out["principal"] if di["principal"] == ev["principal"] else _fixed(di["principal"])
    )
    di["backends"] = [_fixed(b) for b in di["backends"]]
    di["deployment"] = _fixed(di["deployment"])
    out["decision_input"] = di
    return out


VARIANTS = [
    ("clean", {}),
    ("stripped values inside views", {"principal": {**PRINCIPAL, "user": "x\ny", "extra": 1}}),
    ("personal shapes in the decision", {"decision": {**DECISION, "rule_ids": ["a b", "ok"]}}),
    ("backend facts", {"backend": {"id": "b1", "models": ["m", "bad value"], "self_hosted": 1}}),
    ("exotic floats", {"latency_ms": {"total": 1e-05, "x": 2e16}}),
    ("non-ASCII identifiers", {"principal": {**PRINCIPAL, "user": "zoë", "team": "ü-ß"}}),
]


@pytest.mark.parametrize(("name", "changes"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_fixed_views_give_the_same_entry_every_time(name: str, changes: dict[str, Any]) -> None:
    plain = _event(**{"backend": {"id": "b1", "models": ["m"]}, **changes})
    reference = make_entry("complete", plain, "w").row
    fixed = _with_fixed_views(plain)
    for _ in range(3):  # first use fills the memo, the later ones read it
        assert make_entry("complete", fixed, "w").row == reference
        static = static_part(fixed)
        assert make_entry("intent", fixed, "w", static).row == make_entry("intent", plain, "w").row
        assert make_entry("complete", fixed, "w", static).row == reference


def test_fixed_is_read_only_and_copies_are_plain_dicts() -> None:
    view = Fixed(a=1, roles=("r",))
    for change in (
        lambda: view.__setitem__("a", 2),
        lambda: view.__delitem__("a"),
        lambda: view.update(a=2),
        lambda: view.pop("a"),
        lambda: view.setdefault("b", 1),
        view.clear,
        view.popitem,
    ):
        with pytest.raises(TypeError):
            change()
    assert view == {"a": 1, "roles": ("r",)}
    for c in (copy.copy(view), copy.deepcopy(view)):
        assert type(c) is dict and c == view
        c["a"] = 2
    assert view["a"] == 1


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**70), 2**70)
    if kind == 3:  # floats as the normaliser lets them through: plain or exotic
        return rng.choice([round(rng.random() * 10 ** rng.randint(0, 9), 3), 1e-7, 3.5e20, 0.0])
    if kind == 4:
        alphabet = 'abcXYZ019 ._:/@+-"\\\n\t\x00\x1f\x7fé€𝄞\u2028'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == 6:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    keys = [_random_value(rng, 9) for _ in range(rng.randint(0, 5))]
    return {str(k): _random_value(rng, depth + 1) for k in keys}


def test_fast_encoder_writes_the_reference_bytes() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        v = {"v": _random_value(rng)}
        exotic = any(isinstance(x, float) and x and not 1e-4 <= abs(x) < 1e16 for x in _leaves(v))
        assert encode_normalised(v, True) == canonical_bytes(v)
        if not exotic:
            assert encode_normalised(v, False) == canonical_bytes(v), v


def _leaves(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return [x for k in v for x in _leaves(v[k])]
    if isinstance(v, list | tuple):
        return [x for i in v for x in _leaves(i)]
    return [v]


def test_exotic_floats_are_flagged_and_encoded_by_the_reference() -> None:
    body, exotic = normalise_exotic(_event(latency_ms={"total": 1e-05}), "complete")
    assert exotic
    assert b'"total":1e-05' in encode_normalised(body, exotic)
    body, exotic = normalise_exotic(_event(latency_ms={"total": 0.001, "x": 0}), "complete")
    assert not exotic
    assert encode_normalised(body, exotic) == canonical_bytes(body)


def test_input_views_keep_their_normalised_form_apart_per_schema_part() -> None:
    # One Fixed principal reached as the event's principal and inside the decision input.
    p = _fixed({**PRINCIPAL, "user": "x\ny"})
    ev = _event(principal=p, decision_input={**DECISION_INPUT, "principal": p})
    out = normalise(ev, "intent")
    assert out["principal"]["user"] is None and out["decision_input"]["principal"]["user"] is None
    assert out["stripped"] == 2


def test_a_request_with_no_pii_news_shares_one_view_with_the_same_record() -> None:
    from gateway.context import RequestContext
    from gateway.views import NO_PII

    ctx = RequestContext(request_id="req_1", endpoint="chat", client_addr=None)
    quiet = ctx.event("k", "c", False)
    assert quiet["pii"] is NO_PII
    plain = {"counts": {}, "actions": {}, "output": {}, "uninspectable": [], "insecure": [],
             "subjects": [], "output_subjects": []}  # fmt: skip
    assert normalise(quiet, "intent") == normalise({**quiet, "pii": plain}, "intent")
    for field, value in (
        ("pii_counts", {"PERSON": 1}),
        ("pii_actions", {"PERSON": {"pseudonymise": 1}}),
        ("pii_output", {"EMAIL_ADDRESS": 1}),
        ("uninspectable", ["image_url"]),
        ("insecure", ["pii.enabled:false"]),
    ):
        ctx = RequestContext(request_id="req_1", endpoint="chat", client_addr=None)
        setattr(ctx, field, value)
        pii = ctx.event("k", "c", False)["pii"]
        assert pii is not NO_PII and type(pii) is dict
        assert (
            normalise({"pii": pii}, "intent")["pii"] != normalise({"pii": NO_PII}, "intent")["pii"]
        )
