"""Cross-origin requests from browser tools (``server.cors_origins``): off unless listed.

Only the OpenAI-compatible API (``/v1/...``) answers cross-origin; the admin API, health and
metrics never do. A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed
origin gets 204 with the methods, the request headers it asked for (the openai JavaScript SDK
sends its own ``x-stainless-*`` headers beside ``authorization``) and ``Access-Control-Max-Age``;
from any other origin, or asking for a method other than GET and POST, a 403
(``cors_not_allowed``). An actual request from a listed origin gets ``Access-Control-Allow-Origin``
(its origin, ``Vary: Origin``) and the response headers a client reads exposed: ``x-request-id``,
``Retry-After``, ``x-ratelimit-*``.

CORS is the browser's rule, not access control: a request from an unlisted origin is served as
any other (without the headers, so the browser withholds the answer from the page), and every
request still needs its key. ``*`` lists every origin (a warning at start says so).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway.errors import Cause, GatewayError
from gateway.http.raw import send_error
from gateway.http.request_id import request_id

__all__ = ["ORIGIN_RULE", "Cors", "origin_of", "valid_origin"]

Send = Callable[[dict[str, Any]], Awaitable[None]]

# An origin as browsers send it: scheme, host, optional port; no path, no trailing slash.
_ORIGIN = re.compile(r"^https?://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?\Z")
ORIGIN_RULE = "an origin such as https://chat.example.org or http://localhost:3000, or *"
# Header names the preflight may ask for: tokens, comma-separated, bounded.
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*\Z")
_METHODS = frozenset({b"GET", b"POST"})
_EXPOSE = (
    b"x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-limit-tokens, "
    b"x-ratelimit-remaining-requests, x-ratelimit-remaining-tokens, "
    b"x-ratelimit-reset-requests, x-ratelimit-reset-tokens"
)


def valid_origin(value: str) -> bool:
    return value == "*" or bool(_ORIGIN.match(value))


class Cors:
    """The listed origins and what is answered to them (built once from the settings)."""

    def __init__(self, origins: Sequence[str], max_age_s: int) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.encode("ascii") for o in origins if o != "*")
        self.max_age = str(max_age_s).encode()

    def allows(self, origin: bytes) -> bool:
        return self.any or origin in self.origins

    def _allow_origin(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        if self.any:
            return [(b"access-control-allow-origin", b"*")]
        return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]

    def wrap(self, send: Send, origin: bytes) -> Send:
        """``send`` with the allow and expose headers on the response's start."""
        extra = [*self._allow_origin(origin), (b"access-control-expose-headers", _EXPOSE)]

        async def send_with_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        return send_with_cors

    async def preflight(self, scope: dict[str, Any], origin: bytes, send: Send) -> None:
        method = _header(scope, b"access-control-request-method") or b""
        asked = _header(scope, b"access-control-request-headers") or b""
        asked_text = asked.decode("latin-1").strip()
        rid = request_id(scope).encode()
        if (
            not self.allows(origin)
            or method not in _METHODS
            or len(asked_text) > 2048
            or (asked_text and not _HEADER_LIST.match(asked_text))
        ):
            err = GatewayError(
                Cause.CORS_NOT_ALLOWED,
                "Cross-origin request not allowed: the origin is not in server.cors_origins, "
                "or the method or headers asked for are not served.",
            )
            await send_error(send, err, rid)
            return
        headers = [
            *self._allow_origin(origin),
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-max-age", self.max_age),
            (b"content-length", b"0"),
            (b"x-request-id", rid),
        ]
        if asked_text:
            headers.append((b"access-control-allow-headers", asked_text.lower().encode("ascii")))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def origin_of(scope: dict[str, Any]) -> bytes | None:
    return _header(scope, b"origin")
