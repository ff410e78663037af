"""Storage of the gateway core: the async engine and the key table."""

from __future__ import annotations

from gateway.storage.db import create_engine_for
from gateway.storage.schema import api_keys, metadata

__all__ = ["api_keys", "create_engine_for", "metadata"]
