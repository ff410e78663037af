"""What admin handlers share: the request body read with a cap, a call that takes none, a key
change the audit trail must hold first, and who is asking."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request

from gateway.errors import Cause, GatewayError
from gateway.keys import KeyNotRecorded
from gateway.principal import actor_of

__all__ = ["caller", "json_body", "no_body", "recorded"]

T = TypeVar("T")

_BODY_CAP = 64 * 1024  # an admin call's JSON is a few hundred bytes


async def json_body(
    request: Request[Any, Any, Any], max_depth: int, *, empty_ok: bool = False
) -> dict[str, Any]:
    """An admin call's JSON object, read with a cap (413 past it, Content-Length or not);
    ``empty_ok``: no body at all reads as ``{}`` (every field left at its default)."""
    from gateway.http.body import decode_json, read_body

    length = request.headers.get("content-length")
    raw = await read_body(request.receive, length.encode() if length else None, _BODY_CAP)
    if empty_ok and not raw.strip():
        return {}
    return decode_json(raw, max_depth)


async def no_body(request: Request[Any, Any, Any]) -> None:
    """A reload rereads what the operator put on disk and takes nothing from the caller: a body
    (a hook, a callback, a setting: reliability B-5) is refused, not ignored."""
    body = await json_body(request, 4, empty_ok=True)
    if body:
        raise GatewayError(
            Cause.INVALID_PARAMETER,
            f"This call takes no body (it rereads the operator's files); "
            f"unsupported field: '{sorted(body)[0]}'.",
        )


async def recorded(work: Awaitable[T]) -> T:
    """A key change the audit trail must hold first: 503 when it cannot (nothing changed)."""
    try:
        return await work
    except KeyNotRecorded:
        raise GatewayError(
            Cause.AUDIT_UNAVAILABLE,
            "The audit trail could not record the key change; nothing was changed.",
        ) from None


def caller(request: Request[Any, Any, Any]) -> str:
    """Who asked, for the audit entry: the admin token, a key (``key:<id>``) or a console
    session from single sign-on (``sso:<user>``)."""
    return actor_of(request.scope["state"].get("admin_principal"))
