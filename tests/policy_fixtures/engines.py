"""Embedded engines for the scenario table, one per overlay combination (built once)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from gateway.policy.bundle import Bundle, load_bundle
from gateway.policy.embedded import EmbeddedEngine
from tests.policy_fixtures import EXAMPLE_OVERLAYS, OVERLAYS_DIR, make_input
from tests.policy_fixtures.scenarios import Scenario

__all__ = ["bundle_for", "engine_for", "input_for", "overlay_path"]


def overlay_path(name: str) -> Path:
    for root in (EXAMPLE_OVERLAYS, OVERLAYS_DIR):
        if (root / name).is_dir():
            return root / name
    raise LookupError(name)


@functools.cache
def bundle_for(overlays: tuple[str, ...]) -> Bundle:
    return load_bundle(None, tuple(overlay_path(n) for n in overlays))


@functools.cache
def engine_for(overlays: tuple[str, ...]) -> EmbeddedEngine:
    return EmbeddedEngine(bundle_for(overlays), threads=1)


def input_for(s: Scenario) -> dict[str, Any]:
    """The scenario's input as the engine receives it: JSON (the gateway's own views are
    read-only mappings holding tuples; this is a plain, mutable copy)."""
    return json.loads(
        json.dumps(
            make_input(
                s.jurisdiction,
                s.sector,
                at=s.at,
                stance=s.stance,
                team=s.team,
                pii=s.pii,
                backends=s.backends,
            )
        )
    )


def evaluate(s: Scenario) -> Any:
    return engine_for(s.overlays).evaluate_sync(json.dumps(input_for(s)))
