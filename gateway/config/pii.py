"""Settings of the PII guard (owned by the PII component). Every default works with no config."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from gateway.config.base import Strict

__all__ = ["CustomRecognizer", "PiiSettings"]

_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]{1,39}\Z")


class CustomRecognizer(Strict):
    """An identifier of the organisation's own (an employee number, a case or customer
    reference) found by a regular expression and treated like every other type: policy decides
    what happens to it per backend (the default for a type it does not name: pseudonymised for
    hosted backends)."""

    entity: str  # the type's name: EMPLOYEE_ID, CASE_REF (capitals, digits, _; 2-40)
    pattern: str = Field(min_length=1, max_length=500)  # Python regular expression
    score: float = Field(0.85, ge=0.0, le=1.0)  # compared with pii.score_threshold

    @field_validator("entity")
    @classmethod
    def _entity(cls, v: str) -> str:
        if not _ENTITY.match(v):
            raise ValueError("capital letters, digits and _, 2-40, starting with a letter")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        try:
            compiled = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if compiled.fullmatch(""):
            raise ValueError("matches the empty string")
        return v


_REGIONS = (
    "US", "GB", "TW", "KR", "AU", "IT", "CN", "JP", "SG", "IN", "DE", "NL", "CZ", "BE", "IE",
    "FR", "CA",
)  # fmt: skip


class PiiSettings(Strict):
    enabled: bool = True
    deadline_ms: int = Field(2000, ge=1, le=60000)
    max_chars: int = Field(200_000, ge=1)
    # Where detection runs: "thread" (one worker thread, default), "process" (a pool of worker
    # processes, each loading the model once: a large prompt cannot hold the event loop's GIL),
    # or "inline" (on the event loop; tests and tiny deployments only).
    executor: Literal["thread", "process", "inline"] = "thread"
    workers: int = Field(1, ge=1, le=64)  # worker processes ("thread" always uses one thread)
    # Texts of at most this many characters are scanned on the event loop when NER is not needed.
    inline_chars: int = Field(4000, ge=0)
    cache_entries: int = Field(4096, ge=0)  # findings per message text, content-addressed
    ner: bool = True  # names and places; off: identifiers, contacts and numbers only
    # NER reads windows around capitalised tokens (a name or a place starts with a capital);
    # false: every text whole, so lower-case names ("john smith") and a name that is a
    # sentence's first common word ("Will", "May") are offered to the model too, at 2-7x the
    # NER's cost on long prose (docs/benchmarks/pii.md).
    ner_windows: bool = True
    # Weak-checksum identifiers (a Luhn-valid run of digits) and bare national-format phone
    # numbers inside inline code, a fenced block or right after a technical key (port=, pid,
    # timestamp ...) need a context word, which keeps code and logs quiet; false: reported
    # there as anywhere (stricter, more false positives in technical text).
    quiet_in_code: bool = True
    # Distinct tokens whose NER embedding (and first encoder block's products) each analyzer
    # keeps: 3,840 bytes each, 60 MiB at the default, filled as words are seen; 0: none.
    token_cache: int = Field(16_384, ge=0, le=1_000_000)
    encoded_views: bool = True  # also scan base64 / URL-encoded / \u-escaped values
    score_threshold: float = Field(0.4, ge=0.0, le=1.0)
    phone_regions: tuple[str, ...] = _REGIONS
    # Personal data in an answer that was not in the prompt: always counted (pii.output in the
    # audit record); "redact" also replaces it, in streams too (screened as they go: the last
    # 96-160 characters held back; gateway.pii.restore).
    output_new_pii: Literal["report", "redact"] = "report"
    # Image, audio and file parts and token-id arrays cannot be inspected: such a request goes
    # only to backends whose policy allows every kind of personal data (self-hosted, usually),
    # else 403 uninspectable_content. true: send it to the others as well, unscanned — logged on
    # every such request and counted (portcullis_insecure_passes_total).
    insecure_pass_uninspectable: bool = False
    # Identifiers of the organisation's own, found by regular expressions (CustomRecognizer).
    custom: tuple[CustomRecognizer, ...] = ()
    # Phrases that are never personal data here, matched whole and case-insensitively against
    # what a recognizer found: the organisation's name, a public hotline, a product that reads
    # as a person's name. A finding of exactly one of them is dropped; one that only contains it
    # is not.
    allow: tuple[str, ...] = Field((), max_length=10_000)

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not p.strip() or len(p) > 200 for p in v):
            raise ValueError("phrases of 1-200 characters")
        return v
