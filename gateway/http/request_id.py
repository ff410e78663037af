"""``x-request-id`` on every response, including errors and 404s the router answers itself.

A caller-supplied id is kept when it is short and plain; otherwise one is generated.
"""

from __future__ import annotations

import os
import random
import re
from typing import Any

__all__ = ["add_request_id", "request_id"]

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Request ids need to be unique, not secret: 96 bits from a generator seeded from the OS once
# per process (a read of os.urandom per request cost more than the rest of the id handling).
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)  # forked workers must not repeat each other


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
        rid = state["request_id"] = rid or f"req_{_random.getrandbits(96):024x}"
    return str(rid)


async def add_request_id(message: Any, scope: Any) -> None:
    """litestar ``before_send`` hook: runs for every response the app sends."""
    if message["type"] == "http.response.start":
        rid = request_id(scope).encode()
        headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
        headers.append((b"x-request-id", rid))
        message["headers"] = headers
