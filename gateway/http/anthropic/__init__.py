"""Anthropic's Messages API (``POST /v1/messages``) served over chat completions.

A Messages request is translated into a chat-completions request (:func:`to_chat`), which then
takes the ordinary path — authentication (``x-api-key`` as well as ``Authorization: Bearer``),
validation, policy, PII guard, routing, audit — to a backend's ``/chat/completions``; the answer
is translated back (:func:`from_chat`, or :class:`StreamTranslator` for a stream, which turns
the relayed chat chunks, PII already restored, into Messages events). Errors take Anthropic's
envelope (:func:`error_body`), with the gateway's own ``code`` and a denial's reasons inside.
Tools built for Anthropic's API (Claude Code, the ``anthropic`` SDKs) can so use the models the
gateway serves — DeepSeek's weights on the company's own accelerators among them — under the
same policy, PII guard, limits and audit as every other request.

Served: text, images, documents (text or base64), custom tools, ``tool_use`` and
``tool_result`` turns, ``stop_sequences``, streaming, thinking blocks in answers (from a
backend's ``reasoning_content``). Refused with a 400 saying so: Anthropic's own server tools
(web search, code execution, ...), ``container``, ``mcp_servers``, and content that chat
completions cannot carry (documents in a tool result, documents by URL or file id).
``docs/api.md`` has the table.

The package: :mod:`.request` (the request's translation: its parameters), :mod:`.content` (its
turns and content blocks), :mod:`.answer` (a whole answer's, and the error body),
:mod:`.stream` (a stream's events).
"""

from gateway.http.anthropic.answer import anthropic_model, error_body, from_chat, message_id
from gateway.http.anthropic.request import rename_param, to_chat
from gateway.http.anthropic.stream import StreamTranslator

__all__ = [
    "StreamTranslator",
    "anthropic_model",
    "error_body",
    "from_chat",
    "message_id",
    "rename_param",
    "to_chat",
]
