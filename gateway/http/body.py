"""Reading and decoding request bodies with hard bounds, before anything else looks at them."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import Cause, GatewayError

__all__ = [
    "client_address",
    "decode_json",
    "read_body",
    "read_json",
    "request_headers",
    "with_api_key",
]


def client_address(scope: Any) -> str | None:
    """The caller's address as the server saw it: the connection's peer, or the address a
    believed proxy forwarded (``server.trusted_proxies``); None when the server knows none."""
    client = scope.get("client")
    return str(client[0]) if client else None


def with_api_key(authorization: str | None, api_key: str | None) -> str | None:
    """``Authorization`` as sent; without one, the key in Anthropic's ``x-api-key`` header (its
    SDKs send that) as a bearer credential."""
    if authorization is None and api_key is not None:
        return "Bearer " + api_key
    return authorization


def request_headers(
    scope: Any, key_header: bytes | None = None
) -> tuple[str | None, bytes | None, bytes | None]:
    """A raw ASGI request's credential (``Authorization``, else the key in ``key_header`` as a
    bearer one), ``Content-Type`` and ``Content-Length``: the first of each, as litestar's
    ``Headers.get`` reads them."""
    authorization = ctype = length = api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization or value.decode("latin-1")
        elif name == b"content-type":
            ctype = ctype or value
        elif name == b"content-length":
            length = length or value
        elif name == key_header:
            api_key = api_key or value.decode("latin-1")
    return with_api_key(authorization, api_key), ctype, length


async def read_json(
    receive: Any, ctype: bytes | None, length: bytes | None, max_bytes: int, max_depth: int
) -> tuple[dict[str, Any], int]:
    """The request's JSON object and its size in bytes: 415 unless the content type is JSON,
    then :func:`read_body` and :func:`decode_json`."""
    if ctype is None or ctype.split(b";", 1)[0].strip().lower() != b"application/json":
        raise GatewayError(Cause.UNSUPPORTED_MEDIA, "Content-Type must be application/json.")
    raw = await read_body(receive, length, max_bytes)
    return decode_json(raw, max_depth), len(raw)


async def read_body(receive: Any, content_length: bytes | None, cap: int) -> bytes:
    """Read an ASGI request body, refusing (413) as soon as it passes ``cap``, Content-Length or
    not; a client that goes away before the end is a 499, not an error of ours."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise GatewayError(Cause.BAD_REQUEST, "Content-Length is not a number.") from None
        if declared > cap:
            raise _too_large(cap)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(Cause.CLIENT_CLOSED, "The client closed the connection.")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > cap:
                raise _too_large(cap)
            parts.append(chunk)
        if not message.get("more_body", False):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _too_large(cap: int) -> GatewayError:
    return GatewayError(Cause.TOO_LARGE, f"Request body is larger than the limit of {cap} bytes.")


def decode_json(raw: bytes, max_depth: int) -> dict[str, Any]:
    """Strict JSON: valid UTF-8, no lone surrogates, nesting at most ``max_depth``, an object."""
    if not raw:
        raise GatewayError(Cause.INVALID_JSON, "Request body is empty; expected a JSON object.")
    try:
        doc = msgspec.json.decode(raw)
    except UnicodeDecodeError:
        raise GatewayError(Cause.INVALID_JSON, "Request body is not valid UTF-8.") from None
    except RecursionError:
        raise GatewayError(
            Cause.INVALID_JSON, f"Request body is nested deeper than {max_depth} levels."
        ) from None
    except msgspec.DecodeError as exc:
        msg = str(exc)
        if "surrogate" in msg or ("truncated" in msg and b"\\u" in raw):
            msg = "Request body contains an invalid (lone) UTF-16 surrogate escape."
        else:
            msg = "Request body is not valid JSON."
        raise GatewayError(Cause.INVALID_JSON, msg) from None
    if not isinstance(doc, dict):
        raise GatewayError(Cause.INVALID_JSON, "Request body must be a JSON object.")
    _check_depth(doc, max_depth)
    return doc


def _check_depth(doc: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise GatewayError(
                Cause.INVALID_JSON, f"Request body is nested deeper than {max_depth} levels."
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
