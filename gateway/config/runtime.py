"""Settings of the self-hosted runtime as a gateway backend (owned by the runtime component)."""

from __future__ import annotations

from gateway.config.base import Strict

__all__ = ["RuntimeSettings"]


class RuntimeSettings(Strict):
    site_country: str = "AU"
    site_region: str | None = None
