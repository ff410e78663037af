"""The PII guard: inspect every text of a request, then transform a copy per the policy's actions.

``inspect`` extracts every text (see :mod:`gateway.pii.walk`), enforces the size cap (413) and
runs the detector under its deadline (503 on failure). ``apply`` raises ``pii_blocked`` (403,
naming entity types only) when any found type's action is ``block``; otherwise it replaces each
finding in a deep copy of the body and returns the restorer for the answer. The placeholder map
exists only inside that restorer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Cause, GatewayError
from gateway.pii.actions import (
    MAX_SUBJECTS,
    canonical,
    hash_token,
    mask,
    pseudonym_tag,
    redact,
    subject_digest,
    subject_key,
    tenant_key,
)
from gateway.pii.contract import Applied, Finding, PiiDetector
from gateway.pii.generic import Candidate
from gateway.pii.restore import PlaceholderRestorer
from gateway.pii.walk import Slot, extract, write_back
from gateway.policy.contract import PiiAction

__all__ = ["Guard", "RequestInspection"]

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
PatternScan = Callable[[str], list[Candidate]]


@dataclass(frozen=True, slots=True)
class RequestInspection:
    """Implements :class:`gateway.pii.contract.Inspection`. Holds texts: never log it."""

    endpoint: str
    body: Mapping[str, Any] = field(repr=False)
    slots: tuple[Slot, ...] = field(repr=False)
    findings: tuple[tuple[Finding, ...], ...] = field(repr=False)
    counts: Mapping[str, int] = field(default_factory=dict)
    subjects: tuple[str, ...] = ()


class Guard:
    """Implements :class:`gateway.pii.contract.PiiGuard`."""

    def __init__(
        self,
        detector: PiiDetector,
        secret: bytes,
        *,
        max_chars: int = 200_000,
        output_scan: PatternScan | None = None,
        redact_new_output: bool = False,
        index_subjects: bool = False,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the PII secret must be at least 16 bytes")
        self._detector = detector
        self._secret = secret
        # the data-subject index's key; None: the records keep no digest of the values found
        self._subject_key = subject_key(secret) if index_subjects else None
        self._max_chars = max_chars
        self._output_scan = output_scan
        self._redact_new = redact_new_output

    async def inspect(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        entities: frozenset[str] | None,
        strict: bool = False,
    ) -> RequestInspection:
        slots = extract(endpoint, body)
        total = sum(len(s.text) for s in slots)
        if total > self._max_chars:
            raise GatewayError(
                Cause.TOO_LARGE,
                f"The request has {total} characters of text; the limit for personal-data "
                f"inspection is {self._max_chars}.",
            )
        found: Sequence[Sequence[Finding]] = (
            await self._detector.analyze([s.text for s in slots], entities, strict) if slots else []
        )
        if len(found) != len(slots):
            raise GatewayError(Cause.PII_UNAVAILABLE, "The detector returned a malformed result.")
        # A value is counted under each type it was read as (``also``: a shorter reading inside
        # it), so the policy decides on all of them and the strictest action applies.
        counts = Counter(e for fs in found for f in fs for e in (f.entity_type, *f.also))
        subjects: tuple[str, ...] = ()
        if self._subject_key is not None and counts:
            subjects = self._subjects(self._subject_key, slots, found)
        return RequestInspection(
            endpoint, body, tuple(slots), tuple(tuple(fs) for fs in found), dict(counts), subjects
        )

    @staticmethod
    def _subjects(
        key: bytes, slots: Sequence[Slot], found: Sequence[Sequence[Finding]]
    ) -> tuple[str, ...]:
        """Each value's digest under each type it was read as: a search by either finds it."""
        digests = {
            subject_digest(key, e, slot.text[f.start : f.end])
            for slot, fs in zip(slots, found, strict=True)
            for f in fs
            for e in (f.entity_type, *f.also)
        }
        return tuple(sorted(digests)[:MAX_SUBJECTS])

    def apply(
        self,
        inspection: Any,
        action_for: Callable[[str], PiiAction],
        tenant: str,
        redact_new: bool = False,
    ) -> Applied:
        if not isinstance(inspection, RequestInspection):
            raise TypeError("apply() takes the inspection returned by this guard's inspect()")
        actions = {e: PiiAction(action_for(e)) for e in inspection.counts}
        blocked = sorted(e for e, a in actions.items() if a is PiiAction.BLOCK)
        if blocked:
            raise GatewayError(
                Cause.PII_BLOCKED,
                "The request contains personal data that policy does not allow to leave: "
                + ", ".join(blocked)
                + ".",
                details={"entity_types": blocked},
            )
        key = tenant_key(self._secret, tenant)
        mapping: dict[str, str] = {}  # placeholder -> original value
        by_value: dict[tuple[str, str], str] = {}  # (type, tag source) -> placeholder
        taken: Counter[tuple[str, str]] = Counter()
        known: list[tuple[str, str]] = []
        replaced: dict[Slot, str] = {}
        for slot, findings in zip(inspection.slots, inspection.findings, strict=True):
            if not findings:
                continue
            text = slot.text
            for f in sorted(findings, key=lambda f: f.start, reverse=True):
                value = text[f.start : f.end]
                # the strictest action of the value's readings, under that reading's type
                etype = max((f.entity_type, *f.also), key=lambda e: actions[e].strictness)
                known.append((etype, value))
                action = actions[etype]
                # counted as sent as written: the audit record says what left unchanged too
                taken[(etype, action.value)] += 1
                if action is PiiAction.ALLOW:
                    continue
                if action is PiiAction.REDACT:
                    new = redact(etype)
                elif action is PiiAction.MASK:
                    new = mask(etype, value)
                elif action is PiiAction.HASH:
                    new = hash_token(key, etype, value)
                else:
                    new = self._pseudonym(key, etype, value, mapping, by_value)
                if len(slot.path) == 3 and slot.path[::2] == ("messages", "name") and not slot.key:
                    # OpenAI restricts names to [A-Za-z0-9_-]; the bare placeholder restores too.
                    bare = _NAME_UNSAFE.sub("_", new).strip("_")
                    if action is PiiAction.PSEUDONYMISE:
                        mapping[bare] = value
                    new = bare
                text = text[: f.start] + new + text[f.end :]
            if text != slot.text:
                replaced[slot] = text
        body = write_back(inspection.body, replaced)
        restorer = self._restorer(mapping, known, redact_new)
        actions_taken: dict[str, dict[str, int]] = {}
        for (etype, act), n in taken.items():
            actions_taken.setdefault(etype, {})[act] = n
        return Applied(body, restorer, actions_taken)

    def answer_restorer(self, redact_new: bool = False) -> PlaceholderRestorer:
        return self._restorer({}, [], redact_new)

    def _restorer(
        self, mapping: dict[str, str], known: list[tuple[str, str]], redact_new: bool
    ) -> PlaceholderRestorer:
        """New personal data in the answer redacted by the setting for all, or for this one."""
        return PlaceholderRestorer(
            mapping, known, self._output_scan, self._redact_new or redact_new, self._subject_key
        )

    @staticmethod
    def _pseudonym(
        key: bytes,
        entity: str,
        value: str,
        mapping: dict[str, str],
        by_value: dict[tuple[str, str], str],
    ) -> str:
        ident = (entity, canonical(entity, value))
        hit = by_value.get(ident)
        if hit is not None:
            return hit
        for length in (6, 8, 10, 12, 16):
            placeholder = f"<{entity}_{pseudonym_tag(key, entity, value, length)}>"
            if placeholder not in mapping:
                break
        else:  # pragma: no cover - a 64-bit collision within one request
            raise GatewayError(Cause.PII_UNAVAILABLE, "Pseudonym collision; nothing was sent.")
        mapping[placeholder] = value
        by_value[ident] = placeholder
        return placeholder

    async def ready(self) -> bool:
        return await self._detector.ready()

    async def close(self) -> None:
        await self._detector.close()
