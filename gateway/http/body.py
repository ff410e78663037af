"""Reading and decoding request bodies with hard bounds, before anything else looks at them."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import Cause, GatewayError

__all__ = ["decode_json", "read_body"]


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
