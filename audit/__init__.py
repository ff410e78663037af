"""Portcullis audit trail: canonical events, an append-only RFC 6962 Merkle log with signed
checkpoints, group-committed write-ahead records, verification, export, retention and replay.

Importable without ``gateway``; the gateway's entry point is :func:`audit.sink.build_sink`.
"""

from __future__ import annotations

__all__: list[str] = []
