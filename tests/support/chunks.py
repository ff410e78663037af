"""Chat-completion stream chunks and whole SSE bodies, for the fake upstream's ``raw_sse``."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["chunk", "sse"]


def sse(*events: dict[str, Any]) -> bytes:
    """The events as an SSE body, ended by ``[DONE]``."""
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One chat-completion chunk of choice 0."""
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
