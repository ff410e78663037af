"""``x-request-id`` on every response, including errors and 404s the router answers itself.

A caller-supplied id is kept when it is short and plain, and either a UUID or free of anything
that looks like personal data (the audit record drops such values, and the record must carry
the id the caller was given); otherwise one is generated: ``req_`` and 24 letters, never a
digit, so that no generated id can look like a phone or id number to the audit's filter.

A generated id is time-ordered, as a UUIDv7 is: 48 bits of Unix time in milliseconds, then 48
random bits. Ids made later sort later, so the audit log's index on ``request_id`` grows at its
end instead of at a random page per entry — with random ids each commit rewrote one index page
per entry, and that cost grew with the log (SQLite, 300,000 entries: 74 µs of CPU per entry
appended with random ids, 52 µs with time-ordered ones; ``docs/benchmarks/audit.md``).
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any

from audit.shapes import plain_request_id

__all__ = ["add_request_id", "new_request_id", "request_id"]

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{8,128}\Z")
# Request ids need to be unique, not secret: the time in milliseconds and 48 bits from a
# generator seeded from the OS once per process (a read of os.urandom per request cost more
# than the rest of the id handling). Two ids collide only if made in the same millisecond with
# the same 48 random bits.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)  # forked workers must not repeat each other
# 96 bits as 24 hex digits, each spelled as a letter a-p (in the same order, so the letters sort
# as the number does): hex spelled with digits holds a run of nine or more decimal digits in
# about one id in ten, which the audit's filter drops as a possible phone or national id number.
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def new_request_id() -> str:
    """``req_`` and 24 letters a-p: milliseconds since the epoch (12), then random bits (12)."""
    ms = time.time_ns() // 1_000_000
    return "req_" + f"{ms & 0xFFFF_FFFF_FFFF:012x}{_random.getrandbits(48):012x}".translate(
        _LETTERS
    )


def request_id(scope: Any) -> str:
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE.match(candidate) and plain_request_id(candidate):
                    rid = candidate
                break
        if rid is None:
            rid = new_request_id()
        state["request_id"] = rid
    return str(rid)


async def add_request_id(message: Any, scope: Any) -> None:
    """litestar ``before_send`` hook: runs for every response the app sends."""
    if message["type"] == "http.response.start":
        rid = request_id(scope).encode()
        headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
        headers.append((b"x-request-id", rid))
        message["headers"] = headers
