"""What the data-subject search (:mod:`audit.subjects`) takes from the gateway: the types a value
may have been found under, and the value's digest under each, with the same key the PII guard
used (:func:`gateway.pii.actions.subject_digest`). Shared by ``portcullis audit subject`` and
``POST /admin/audit/subjects``. The value itself is used here only: never logged, recorded or
kept."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.config import Settings
from gateway.secrets_store import ServerSecret

__all__ = ["MAX_VALUE_CHARS", "known_types", "subject_digests"]

MAX_VALUE_CHARS = 512  # longer than any identifier, name or address the guard finds


def known_types(settings: Settings) -> frozenset[str]:
    """Every type the PII guard can find: the identifiers, e-mail, phone, IBAN and IP
    recognizers, the NER's people and places, and the organisation's own (``pii.custom``)."""
    from gateway.pii.ner import NER_ENTITIES
    from gateway.pii.scanner import PATTERN_ENTITIES

    return PATTERN_ENTITIES | NER_ENTITIES | {c.entity for c in settings.pii.custom}


def subject_digests(secret: ServerSecret, value: str, types: Iterable[str]) -> dict[str, str]:
    """``value``'s digest under each of ``types`` (digest -> type): what a request's record
    holds if the guard found that value as that type (ValueError for an empty or too long
    value)."""
    from gateway.pii.actions import subject_digest, subject_key

    if not value.strip() or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"value: 1 to {MAX_VALUE_CHARS} characters")
    key = subject_key(secret.derive("pii"))
    return {subject_digest(key, t, value): t for t in sorted(set(types))}
