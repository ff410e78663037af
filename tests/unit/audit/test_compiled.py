"""The compiled normaliser gives the reference walk's result, drop counts and float flag on
random events: schema-shaped ones with junk at every position, read-only views among them."""

from __future__ import annotations

import math
import random
import types
from collections.abc import Callable
from typing import Any

import pytest

from audit import event as E
from audit.event import EVENT, Fixed, normalise_exotic, normalise_fields
from audit.spec_compiler import ListOf, Nested

SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    7,
    -3,
    2**70,
    0.5,
    1e-7,
    3.5e20,
    float("nan"),
    float("inf"),
    "",
    "alice",
    "AU-NSW",
    "rule.one",
    "req_abcdefghijklmnopabcdefgh",
    "123e4567-e89b-12d3-a456-426614174000",
    "two words",
    "line\nbreak",
    "jane@example.com",
    "call 0412 345 678",
    "sk-live-4f9a8b7c6d5e4f3a2b1c",
    "ab" * 32,
    "AB" * 32,
    "2026-11-29T05:14:19.5Z",
    "2026-11-29T05:14:19Z",
    "https://example.com/terms",
    "deepseek-chat",
    "o1-2024-12-17",
    "zoë",
    "x" * 201,
    b"bytes",
    ["alice", "bob"],
    ("r1", "bad value"),
    {"PERSON": 2, "EMAIL": True},
    {"a b": 1},
]


def _value(rng: random.Random, f: Callable[..., Any], depth: int, views: list[Fixed]) -> Any:
    if type(f) is Nested:
        return _mapping(rng, f.spec, depth + 1, views)
    if type(f) is ListOf:
        if rng.random() < 0.2:
            return rng.choice(SCALARS)
        items = [_mapping(rng, f.spec, depth + 1, views) for _ in range(rng.randrange(4))]
        return tuple(items) if rng.random() < 0.3 else items
    return rng.choice(SCALARS)


def _mapping(rng: random.Random, spec: dict[str, Any], depth: int, views: list[Fixed]) -> Any:
    r = rng.random()
    if r < 0.1 or depth > 4:
        return rng.choice(SCALARS)
    if r < 0.2 and views:
        return rng.choice(views)  # a view met before: its memo answers
    out = {k: _value(rng, f, depth, views) for k, f in spec.items() if rng.random() < 0.8}
    for _ in range(rng.randrange(3) if rng.random() < 0.3 else 0):
        out[rng.choice(["prompt", "extra", "a b", "x"])] = rng.choice(SCALARS)
    r = rng.random()
    if r < 0.3:
        view = Fixed(out)
        views.append(view)
        return view
    if r < 0.4:
        return types.MappingProxyType(out)  # a Mapping that is not a dict
    return out


def _refix(v: Any, seen: dict[int, tuple[Fixed, Fixed]]) -> Any:
    """A deep copy in which every Fixed is a new Fixed (its own memo); a view met again maps to
    the same copy (``seen`` keeps the originals alive, so their ids stay theirs)."""
    if isinstance(v, Fixed):
        known = seen.get(id(v))
        if known is None:
            known = seen[id(v)] = (v, Fixed({k: _refix(x, seen) for k, x in v.items()}))
        return known[1]
    if isinstance(v, dict):
        out = {k: _refix(x, seen) for k, x in v.items()}
    elif isinstance(v, types.MappingProxyType):
        out = types.MappingProxyType({k: _refix(x, seen) for k, x in v.items()})
    elif isinstance(v, list):
        out = [_refix(x, seen) for x in v]
    elif isinstance(v, tuple):
        out = tuple(_refix(x, seen) for x in v)
    else:
        return v
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (a dropped NaN is None on both sides, but be exact)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _reference(event: Any) -> tuple[Any, int, bool]:
    s = E._Stripper()
    out = s.fields(event, EVENT)
    return out, s.count, s.exotic


def _compiled(event: Any) -> tuple[Any, int, bool]:
    s = E._Stripper()
    out = E._EVENT_FIELDS(s, event)
    return out, s.count, s.exotic


@pytest.mark.parametrize("seed", range(4))
def test_compiled_walk_equals_the_reference_on_random_events(seed: int) -> None:
    rng = random.Random(seed)
    views: list[Fixed] = []
    reference_views: dict[int, tuple[Fixed, Fixed]] = {}  # the reference's own copies of views
    for _ in range(1500):
        ev = _mapping(rng, EVENT, 0, views) if rng.random() < 0.9 else rng.choice(SCALARS)
        if len(views) > 50:
            del views[:25]
        ref_ev = _refix(ev, reference_views)
        got, want = _compiled(ev), _reference(ref_ev)
        assert _same(got[0], want[0]), (got, want)
        assert got[1:] == want[1:], (got[1:], want[1:])
        # and again: the views' memos now answer, with the same result
        assert _same(_compiled(ev)[0], got[0]) and _compiled(ev)[1:] == got[1:]


def test_partial_normalisation_equals_the_reference_per_field() -> None:
    rng = random.Random(11)
    keys = tuple(EVENT)
    for _ in range(500):
        ev = _mapping(rng, EVENT, 0, [])
        if not isinstance(ev, dict):
            continue
        subset = tuple(k for k in keys if rng.random() < 0.5)
        got, count, exotic = normalise_fields(ev, subset)
        s = E._Stripper()
        want = {k: EVENT[k](s, ev.get(k)) for k in subset}
        assert _same(got, want) and (count, exotic) == (s.count, s.exotic)
    with pytest.raises(KeyError):
        normalise_fields({}, ("request_id", "prompt"))


def test_whole_event_normalisation_uses_the_compiled_walk() -> None:
    ev = {"request_id": "req-1", "model": "jane@example.com", "prompt": "secret"}
    out, exotic = normalise_exotic(ev, "intent")
    assert out["request_id"] == "req-1" and out["model"] is None
    assert out["stripped"] == 2 and not exotic
    assert _same({k: v for k, v in out.items() if k in EVENT}, _reference(ev)[0])
