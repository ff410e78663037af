"""Answers sent on raw ASGI, outside litestar's response objects: the inference routes
(:mod:`gateway.http.inference`) and the CORS preflight (:mod:`gateway.http.cors`)."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError

__all__ = ["error_headers", "send_error", "send_json"]

_encode = msgspec.json.encode
_JSON = (b"content-type", b"application/json")


async def send_json(send: Any, status: int, body: bytes, rid: bytes, extra: Any = ()) -> None:
    """A JSON body (already encoded) with its length, the request id and ``extra`` headers."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _JSON,
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Any, exc: GatewayError, rid: bytes) -> None:
    """The error's OpenAI envelope, its status and its headers (``Retry-After``, ...)."""
    await send_json(send, exc.status, _encode(exc.body()), rid, error_headers(exc))


def error_headers(exc: GatewayError) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
