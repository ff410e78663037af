"""Seams of the PII guard.

The gateway's pipeline calls, per request::

    inspection = await guard.inspect(endpoint, body, entities)   # detection, every message part
    applied = guard.apply(inspection, action_for, tenant)          # transform a copy of the body
    ... forward applied.body ...
    answer = applied.restorer.restore_json(endpoint, upstream_json)   # non-streaming
    sr = applied.restorer.stream(); text = sr.feed(delta); ... sr.flush()  # streaming

``entities`` is the set of entity types the policy cares about for the permitted backends
(``None``: all). ``action_for(entity_type)`` gives the action for the chosen backend.
``apply`` raises ``GatewayError(Cause.PII_BLOCKED)`` when an entity's action is ``block``.
Detection failures and missed deadlines raise ``GatewayError(Cause.PII_UNAVAILABLE)``.
Nothing here may log or put in an exception message a value, only types, counts and lengths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.policy.contract import PiiAction

__all__ = [
    "ANSWER_TEXTS",
    "Applied",
    "Finding",
    "Inspection",
    "PiiDetector",
    "PiiGuard",
    "Restorer",
    "StreamRestorer",
]

# The members of an answer's message (and of a streamed delta) that carry the model's words and
# are restored: the content, a refusal, and DeepSeek's reasoner's ``reasoning_content``.
ANSWER_TEXTS = ("content", "refusal", "reasoning_content")


@dataclass(frozen=True, slots=True)
class Finding:
    entity_type: str
    start: int  # offsets into the original (un-normalised) text
    end: int
    score: float
    # Types of shorter findings inside this one that gave way to it (a twelve-digit My Number
    # read inside a card number): the value gets the strictest action of them all.
    also: tuple[str, ...] = ()


class PiiDetector(Protocol):
    async def analyze(
        self, texts: Sequence[str], entities: frozenset[str] | None, strict: bool = False
    ) -> list[list[Finding]]:
        """Findings per text. ``strict``: as strictly as the detector can read (the decision's
        ``strict_pii`` obligation)."""
        ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


class Inspection(Protocol):
    @property
    def counts(self) -> Mapping[str, int]:
        """Entity type -> number of findings, over the whole request."""
        ...

    @property
    def subjects(self) -> Sequence[str]:
        """The keyed digests of the values found, one per value and type it was read as
        (:func:`gateway.pii.actions.subject_digest`), sorted; empty unless the guard keeps the
        data-subject index (``audit.record_subject_digests``)."""
        ...


class StreamRestorer(Protocol):
    def feed(self, text: str) -> str:
        """Return what can be released now; hold back at most one placeholder's length."""
        ...

    def flush(self) -> str: ...


class Restorer(Protocol):
    def restore_text(self, text: str) -> str: ...

    def restore_json(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def stream(self, *, json_string: bool = False) -> StreamRestorer:
        """A streaming restorer; ``json_string`` escapes restored values for JSON string text."""
        ...

    @property
    def new_pii(self) -> Mapping[str, int]:
        """Entity type -> count of personal data found in the answer that was not in the prompt."""
        ...

    @property
    def new_subjects(self) -> Set[str]:
        """The keyed digests of those values (the data-subject index; empty unless it is kept)."""
        ...


@dataclass(frozen=True, slots=True)
class Applied:
    body: dict[str, Any]
    restorer: Restorer
    actions_taken: Mapping[str, Mapping[str, int]]  # entity type -> {action: count}


class PiiGuard(Protocol):
    async def inspect(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        entities: frozenset[str] | None,
        strict: bool = False,
    ) -> Inspection: ...

    def apply(
        self,
        inspection: Inspection,
        action_for: Callable[[str], PiiAction],
        tenant: str,
        redact_new: bool = False,
    ) -> Applied:
        """The request as it may leave, and the restorer for its answer. ``redact_new``: the
        answer's personal data that the prompt did not hold is replaced, not only counted (the
        decision's obligation ``redact_new_pii``; the setting ``pii.output_new_pii: redact`` does
        it for every request)."""
        ...

    def answer_restorer(self, redact_new: bool = False) -> Restorer:
        """For an answer to a request that held no personal data (nothing to restore): still
        scanned for personal data the prompt did not hold (counted, or redacted by setting or
        ``redact_new``)."""
        ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...
