"""Settings of the policy engine (owned by the policy component)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["PolicySettings"]


class PolicySettings(Strict):
    engine: Literal["embedded", "opa"] = "embedded"
    bundle: Path | None = None  # default: the shipped policies/ directory
    overlays: tuple[Path, ...] = ()  # the organisation's own rules and data
    deadline_ms: int = Field(250, ge=1, le=250)
    self_hosted_stance: Literal["cautious", "permit"] = "cautious"
    opa_url: str = "http://127.0.0.1:8181"
