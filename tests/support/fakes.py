"""Deterministic fakes for unit tests (never used where an issue asks for the real thing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from gateway.errors import Cause, GatewayError
from gateway.policy.contract import Decision, PiiAction, parse_decision

__all__ = ["FakeDecider", "MemoryAuditSink", "allow_all"]


def allow_all(policy_input: Mapping[str, Any]) -> dict[str, Any]:
    ids = [b["id"] for b in policy_input["backends"]]
    return {
        "version": "1",
        "allow": True,
        "permitted_backends": ids,
        "pii_actions": {i: {"*": PiiAction.ALLOW.value} for i in ids},
        "reasons": [],
        "obligations": {},
        "bundle_revision": "fake-1",
    }


class FakeDecider:
    def __init__(self, rule: Callable[[Mapping[str, Any]], dict[str, Any]] = allow_all) -> None:
        self.rule = rule
        self.inputs: list[Mapping[str, Any]] = []
        self.fail = False
        self.delay_s = 0.0

    @property
    def revision(self) -> str:
        return "fake-1"

    async def decide(
        self, policy_input: Mapping[str, Any], candidates: tuple[str, ...]
    ) -> Decision:
        self.inputs.append(policy_input)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise GatewayError(Cause.POLICY_UNAVAILABLE, "The policy engine is unavailable.")
        return parse_decision(self.rule(policy_input), candidates)

    async def ready(self) -> bool:
        return not self.fail

    async def close(self) -> None:
        return None


class MemoryAuditSink:
    def __init__(self) -> None:
        self.intents: list[Mapping[str, Any]] = []
        self.completions: list[Mapping[str, Any]] = []
        self.records: list[tuple[str, Mapping[str, Any]]] = []  # administrative entries
        self.down = False

    async def start(self) -> None:
        return None

    async def intent(self, event: Mapping[str, Any]) -> None:
        if self.down:
            raise ConnectionError("audit store down")
        self.intents.append(event)

    async def complete(self, event: Mapping[str, Any]) -> None:
        if self.down:
            raise ConnectionError("audit store down")
        self.completions.append(event)

    async def record(self, kind: str, event: Mapping[str, Any]) -> int:
        if self.down:
            raise ConnectionError("audit store down")
        self.records.append((kind, event))
        return len(self.records)

    async def ready(self) -> bool:
        return not self.down

    def wait_completions(self, n: int, timeout_s: float = 2.0) -> list[Mapping[str, Any]]:
        """The completion records once there are ``n`` (each is written in a background task
        after its answer, so a test may look before it lands)."""
        end = time.monotonic() + timeout_s
        while len(self.completions) < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.completions

    async def close(self) -> None:
        return None
