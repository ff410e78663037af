"""``POST /v1/messages/count_tokens``: Anthropic's token count, which Claude Code and the
``anthropic`` SDKs (``client.messages.count_tokens``) ask for to size a conversation.

The request is read as ``/v1/messages`` reads one — the same key (``x-api-key`` or ``Authorization:
Bearer``), body limits, translation and validation (``max_tokens`` may be left out, as Anthropic
allows here) — and the model must be one this key may use, as ``GET /v1/models/{model}`` says
(404 otherwise: a model it may not use and one not served look the same). Nothing is forwarded,
so it is neither limited nor recorded in the audit trail, like ``GET /v1/models``; the answer is
``{"input_tokens": N}``, counted by :mod:`gateway.token_count` (``x-portcullis-token-count``
says how: ``deepseek-tokenizer`` or ``estimate``). Errors take Anthropic's envelope.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import asgi

from gateway.errors import Cause, GatewayError
from gateway.http.anthropic import error_body
from gateway.http.body import client_address, read_json, request_headers
from gateway.http.dialects import DIALECTS
from gateway.http.errors import unexpected
from gateway.http.raw import error_headers, send_json
from gateway.http.request_id import request_id
from gateway.models_view import permitted_model
from gateway.services import Services
from gateway.token_count import TokenCounter

__all__ = ["COUNTER", "count_tokens"]

COUNTER = TokenCounter()
_encode = msgspec.json.encode
_MESSAGES = DIALECTS["messages"]


async def _count(scope: Any, receive: Any, services: Services) -> tuple[int, str]:
    if scope["method"] != "POST":
        raise GatewayError(
            Cause.METHOD_NOT_ALLOWED, "Method not allowed on this path.", headers={"Allow": "POST"}
        )
    authorization, ctype, length = request_headers(scope, b"x-api-key")
    principal = await services.keys.authenticate(authorization, client_address(scope))
    limits = services.settings.requests
    body, size = await read_json(
        receive, ctype, length, limits.max_body_bytes, limits.max_json_depth
    )
    # a count needs no answer length, and is never streamed
    body = {**body, "max_tokens": body.get("max_tokens") or 1, "stream": None}
    parsed = _MESSAGES.parse(body, limits, size, services.catalog.passthrough)
    if await permitted_model(services, principal, parsed.model) is None:
        raise services.catalog.not_found()
    name = services.catalog.canonical(parsed.model) or parsed.model
    families = {b.model_family for b in services.catalog.backends_for(name)}
    family = families.pop() if len(families) == 1 else ""
    return await COUNTER.count(parsed.body, family)


async def _handler(scope: Any, receive: Any, send: Any) -> None:
    services: Services = scope["app"].state.services
    rid = request_id(scope)
    try:
        tokens, how = await _count(scope, receive, services)
    except GatewayError as exc:
        if exc.cause is Cause.CLIENT_CLOSED:
            return
        await send_json(send, exc.status, _encode(error_body(exc, rid)), rid.encode(),
                        error_headers(exc))  # fmt: skip
        return
    except Exception as exc:  # noqa: BLE001 - the boundary: type only (messages may carry content)
        err = unexpected(exc, scope["path"])
        await send_json(send, err.status, _encode(error_body(err, rid)), rid.encode(),
                        error_headers(err))  # fmt: skip
        return
    await send_json(
        send,
        200,
        _encode({"input_tokens": tokens}),
        rid.encode(),
        [(b"x-portcullis-token-count", how.encode())],
    )


count_tokens = asgi("/v1/messages/count_tokens", copy_scope=False)(_handler)
