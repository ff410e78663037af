"""A chat completion as the Responses answer (:func:`from_chat`), and the pieces of a response
object the stream's events share."""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "as_dict",
    "call_item",
    "from_chat",
    "message_item",
    "reasoning_item",
    "response_id",
    "skeleton",
    "status_of",
    "text_part",
    "usage_of",
]


def as_dict(v: Any) -> dict[str, Any]:
    """``v`` when it is an object, else an empty one: answers of any shape are read, not trusted."""
    return v if isinstance(v, dict) else {}


def response_id(request_id: str) -> str:
    """``resp_`` and the request id's own letters: the response names the request it was."""
    return "resp_" + request_id.removeprefix("req_")


def usage_of(u: Any) -> dict[str, Any] | None:
    if not isinstance(u, dict):
        return None
    inp, out = u.get("prompt_tokens"), u.get("completion_tokens")
    if not isinstance(inp, int) or not isinstance(out, int):
        return None
    details_in = u.get("prompt_tokens_details")
    details_out = u.get("completion_tokens_details")
    cached = details_in.get("cached_tokens") if isinstance(details_in, dict) else None
    reasoning = details_out.get("reasoning_tokens") if isinstance(details_out, dict) else None
    total = u.get("total_tokens")
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached if isinstance(cached, int) else 0},
        "output_tokens": out,
        "output_tokens_details": {
            "reasoning_tokens": reasoning if isinstance(reasoning, int) else 0
        },
        "total_tokens": total if isinstance(total, int) else inp + out,
    }


def status_of(finish: Any) -> tuple[str, dict[str, str] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def skeleton(request: dict[str, Any], rid: str, created: Any, model: Any) -> dict[str, Any]:
    """The response object's fields that echo the request."""
    text = as_dict(request.get("text"))
    reasoning = as_dict(request.get("reasoning"))
    return {
        "id": rid,
        "object": "response",
        "created_at": created if isinstance(created, int) else int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model if isinstance(model, str) else request.get("model"),
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation", "disabled"),
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def reasoning_item(rid: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": "rs_" + rid[5:],
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
        "status": status,
    }


def message_item(rid: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_" + rid[5:],
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def text_part(text: str, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def call_item(rid: str, i: int, call_id: Any, name: Any, args: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{rid[5:]}_{i}",
        "call_id": call_id if isinstance(call_id, str) else f"call_{rid[5:]}_{i}",
        "name": name if isinstance(name, str) else "",
        "arguments": args,
        "status": status,
    }


def from_chat(chat: dict[str, Any], request: dict[str, Any], rid: str) -> dict[str, Any]:
    """The Responses answer for a chat completion (its first choice; the request has no ``n``)."""
    out = skeleton(request, rid, chat.get("created"), chat.get("model"))
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = as_dict(choice)
    message = as_dict(choice.get("message"))
    items: list[dict[str, Any]] = []
    thought = message.get("reasoning_content")
    if isinstance(thought, str) and thought:
        items.append(reasoning_item(rid, thought))
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(refusal, str) and refusal:
        items.append(message_item(rid, [{"type": "refusal", "refusal": refusal}], "completed"))
    elif isinstance(content, str):
        lp = choice.get("logprobs")
        tokens = lp.get("content") if isinstance(lp, dict) else None
        part = text_part(content, tokens if isinstance(tokens, list) else None)
        items.append(message_item(rid, [part], "completed"))
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            args = fn["arguments"] if isinstance(fn.get("arguments"), str) else ""
            items.append(call_item(rid, i, call.get("id"), fn.get("name"), args, "completed"))
    out["output"] = items
    out["status"], out["incomplete_details"] = status_of(choice.get("finish_reason"))
    out["usage"] = usage_of(chat.get("usage"))
    return out
