"""Settings of the PII guard (owned by the PII component). Every default works with no config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["PiiSettings"]

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
