"""The APIs served over chat completions: OpenAI's Responses API and Anthropic's Messages API.

A :class:`Dialect` is what the inference route needs of one: the request's chat form (errors
naming the caller's own fields), the answer's and the stream's translation back, and the error
body in the API's own envelope. The request then takes the chat path like any other; its record
says which API the caller used (``request.api`` in the policy input, ``endpoint`` in the audit
trail and the metrics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.core import RequestLimits
from gateway.errors import GatewayError
from gateway.http import anthropic, responses
from gateway.http.validate import ParsedRequest, validate_request
from gateway.streaming import EventTranslator

__all__ = ["DIALECTS", "Dialect"]


@dataclass(frozen=True, slots=True)
class Dialect:
    to_chat: Callable[[dict[str, Any], frozenset[str]], dict[str, Any]]
    rename_param: Callable[[GatewayError], GatewayError]
    answer_id: Callable[[str], str]  # the answer's id for a request id
    from_chat: Callable[[dict[str, Any], dict[str, Any], str], dict[str, Any]]
    translator: Callable[[dict[str, Any], str], EventTranslator]
    # The error body in the API's envelope (None: OpenAI's, which the Responses API shares).
    error_body: Callable[[GatewayError, str], dict[str, Any]] | None = None
    # A header that carries the key when Authorization does not (Anthropic's x-api-key).
    key_header: bytes | None = None

    def parse(
        self, body: dict[str, Any], limits: RequestLimits, raw_len: int, passthrough: frozenset[str]
    ) -> ParsedRequest:
        """The request as the chat request it is served as; errors name its own fields."""
        chat = self.to_chat(body, passthrough)  # its errors name the caller's fields already
        try:
            return validate_request("chat", chat, limits, raw_len, passthrough)
        except GatewayError as exc:
            raise self.rename_param(exc) from None


DIALECTS: dict[str, Dialect] = {
    "responses": Dialect(
        to_chat=responses.to_chat,
        rename_param=responses.rename_param,
        answer_id=responses.response_id,
        from_chat=responses.from_chat,
        translator=responses.StreamTranslator,
    ),
    "messages": Dialect(
        to_chat=anthropic.to_chat,
        rename_param=anthropic.rename_param,
        answer_id=anthropic.message_id,
        from_chat=anthropic.from_chat,
        translator=anthropic.StreamTranslator,
        error_body=anthropic.error_body,
        key_header=b"x-api-key",
    ),
}
