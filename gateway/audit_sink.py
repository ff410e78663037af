"""Seam between the gateway and the audit trail (implementations live in the ``audit`` package).

Write-ahead: ``intent`` must be durable before anything is forwarded ("no audit, no forward");
it raises on failure or when it cannot finish within the configured deadline, and the pipeline
answers 503 ``audit_unavailable``. ``complete`` records the outcome of the same request id;
``record`` appends an administrative entry (a configuration reload) before it takes effect.
Events are JSON-safe dicts (field list: docs/audit.md); never content, values or keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["AuditSink"]


class AuditSink(Protocol):
    async def start(self) -> None: ...

    async def intent(self, event: Mapping[str, Any]) -> None: ...

    async def complete(self, event: Mapping[str, Any]) -> None: ...

    async def record(self, kind: str, event: Mapping[str, Any]) -> int:
        """Append an administrative entry (``config``, ``export``, ...) durably; its ``seq``."""
        ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...
