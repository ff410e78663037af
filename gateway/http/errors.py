"""Rendering every error as OpenAI's envelope; no stack trace or framework detail ever leaves."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.errors import Cause, GatewayError
from gateway.storage.db import is_outage

__all__ = ["EXCEPTION_HANDLERS", "render", "unexpected"]

DATABASE_DOWN = "The database is not answering; nothing was done. Retry later."

log = logging.getLogger("portcullis.errors")

_HTTP_CAUSES = {
    400: Cause.BAD_REQUEST,
    401: Cause.UNAUTHENTICATED,
    403: Cause.FORBIDDEN,
    404: Cause.NOT_FOUND,
    405: Cause.METHOD_NOT_ALLOWED,
    413: Cause.TOO_LARGE,
    415: Cause.UNSUPPORTED_MEDIA,
    429: Cause.RATE_LIMITED,
}


def render(err: GatewayError) -> Response[bytes]:
    import msgspec

    return Response(
        content=msgspec.json.encode(err.body()),
        status_code=err.status,
        media_type="application/json",
        headers=err.headers,
    )


def _gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
    log.log(
        exc.cause.value.log_level,
        "request refused",
        extra={"code": exc.cause.code, "status": exc.status, "path": request.url.path},
    )
    return render(exc)


def _http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    cause = _HTTP_CAUSES.get(exc.status_code, Cause.BAD_REQUEST)
    messages = {
        Cause.NOT_FOUND: "Unknown path.",
        Cause.METHOD_NOT_ALLOWED: "Method not allowed on this path.",
        Cause.TOO_LARGE: "Request body is too large.",
    }
    return render(GatewayError(cause, messages.get(cause, "Bad request.")))


def unexpected(exc: Exception, path: str) -> GatewayError:
    """The answer to an exception nothing else handled, logged by its type only (messages may
    carry content): 503 when the database did not answer (an admin read or a key lookup while
    it is down), else 500."""
    if is_outage(exc):
        log.error("database unavailable (%s) on %s", type(exc).__name__, path)
        return GatewayError(Cause.DATABASE_UNAVAILABLE, DATABASE_DOWN)
    log.error("unexpected error %s on %s", type(exc).__name__, path)
    return GatewayError(Cause.INTERNAL, "Internal error; nothing was sent.")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # The one top-level boundary (the inference routes have their own: gateway.http.inference).
    return render(unexpected(exc, request.url.path))


EXCEPTION_HANDLERS = {
    GatewayError: _gateway_error,
    HTTPException: _http_exception,
    Exception: _unexpected,
}
