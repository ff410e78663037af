"""Settings of the PII guard (owned by the PII component)."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["PiiSettings"]


class PiiSettings(Strict):
    enabled: bool = True
    deadline_ms: int = Field(2000, ge=1, le=60000)
    max_chars: int = Field(200_000, ge=1)
