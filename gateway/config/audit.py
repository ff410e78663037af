"""Settings of the audit trail (owned by the audit component)."""

from __future__ import annotations

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["AuditSettings"]


class AuditSettings(Strict):
    intent_deadline_ms: int = Field(1000, ge=1, le=60000)
    record_client_address: bool = True
