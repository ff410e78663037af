"""OpenAI's Responses API (``POST /v1/responses``) served over chat completions.

A Responses request is translated into a chat-completions request (:func:`to_chat`), which then
takes the ordinary path — authentication, validation, policy, PII guard, routing, audit — to a
backend's ``/chat/completions``; the answer is translated back (:func:`from_chat`, or
:class:`StreamTranslator` for a stream, which turns the relayed chat chunks, PII already
restored, into Responses events). Backends need not know the Responses API; DeepSeek's and
vLLM's do not.

The gateway keeps no prompts or answers, so it serves the **stateless** part of the API:
``previous_response_id``, ``conversation``, ``background``, stored ``prompt`` templates and
``item_reference`` inputs are refused with a 400 saying so (send the whole conversation in
``input``). Only function tools are offered to the backend: hosted tools (web search, file
search, code interpreter, ...) and Codex's namespaced tool groups in ``tools`` are left out (a
``tool_choice`` naming one is refused). ``store`` is accepted and answered ``false``;
``GET /v1/responses/{id}`` is a 404. ``docs/api.md`` has the table.

The package: :mod:`.request` (the request's translation), :mod:`.answer` (a whole answer's),
:mod:`.stream` (a stream's events).
"""

from gateway.http.responses.answer import from_chat, response_id
from gateway.http.responses.request import rename_param, to_chat
from gateway.http.responses.stream import StreamTranslator

__all__ = ["StreamTranslator", "from_chat", "rename_param", "response_id", "to_chat"]
