"""``x-request-id`` on every response, including errors and 404s the router answers itself.

A caller-supplied id is kept when it is short and plain; otherwise one is generated.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

__all__ = ["add_request_id", "request_id"]

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id(scope: Any) -> str:
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE.match(candidate):
                    rid = candidate
                break
        rid = state["request_id"] = rid or "req_" + secrets.token_hex(12)
    return str(rid)


async def add_request_id(message: Any, scope: Any) -> None:
    """litestar ``before_send`` hook: runs for every response the app sends."""
    if message["type"] == "http.response.start":
        rid = request_id(scope).encode()
        headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
        headers.append((b"x-request-id", rid))
        message["headers"] = headers
