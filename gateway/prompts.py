"""System prompts the gateway adds to a request, and the canary screen on the answer.

Policy asks (the decision's ``system_prompts``, named by an overlay); the configuration holds the
texts (``system_prompts`` in the file; :mod:`gateway.config.prompts`). :func:`plan` turns the
decision's ids into an :class:`Injection` for one request; ``Injection.apply`` puts the prompts in
front of a chat request's messages as ``system`` messages, or in front of a completion's prompt
text. Embeddings get none: a system prompt instructs a model that writes.

A prompt with ``canary`` carries a marker made afresh for each request (``pc-`` and 16 hex
digits, from :mod:`secrets`), at its ``{canary}`` slot or in front of its text. An answer that
repeats the marker is repeating the prompt (OWASP LLM07). :class:`Screened` wraps the answer's
restorer (the PII guard's, or none) and looks for the marker before placeholders are restored,
in any case of its letters: in a whole answer in every text of every choice; in a stream in each
text of each choice as it arrives, holding back only a tail that could be the start of the marker
(at most 18 characters). Then, per the prompts' ``on_leak`` (``block`` if any asks it):

- ``block``: a whole answer's choices are replaced by an empty message whose ``refusal`` says why,
  ``finish_reason`` ``content_filter``; a stream releases the text before the marker, then a
  ``refusal`` delta, and nothing more of the answer's texts or tool calls, each choice ending
  with ``finish_reason`` ``content_filter``;
- ``redact``: the marker is replaced by ``[CANARY]`` and the rest passes.

A choice's ``logprobs`` spell its tokens, the marker's too, in pieces the screen cannot hold back:
they are dropped from a screened stream's chunks and from a whole answer's choices that held the
marker. The screen catches the marker as written; a model that paraphrases the prompt, spells
the marker out or leaves it out is not caught (docs/configuration.md, "System prompts").
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from gateway.config.prompts import CANARY_SLOT, SystemPrompt
from gateway.errors import Cause, GatewayError
from gateway.pii.contract import Restorer, StreamRestorer

__all__ = ["REDACTED", "WITHHELD", "Canary", "Injection", "Screened", "plan"]

log = logging.getLogger("portcullis.prompts")

CANARY_PREFIX = "pc-"
REDACTED = "[CANARY]"
WITHHELD = "The answer was withheld: it repeated a system prompt the gateway added."


class Canary:
    """One request's marker, and what the screen found of it."""

    def __init__(self, token: str, block: bool) -> None:
        self.token = token
        self.block = block
        self.leaks = 0  # times the answer repeated it
        self.tripped = False  # block: the answer has repeated it; nothing more of it goes out
        self._re = re.compile(re.escape(token), re.IGNORECASE)
        self._low = token.lower()

    @classmethod
    def fresh(cls, block: bool) -> Canary:
        return cls(CANARY_PREFIX + secrets.token_hex(8), block)

    def screen(self, text: str) -> str:
        """A whole text: the marker counted and, under ``redact``, replaced."""
        found = len(self._re.findall(text))
        if not found:
            return text
        self.leaks += found
        if self.block:
            self.tripped = True
            return text
        return self._re.sub(REDACTED, text)

    def held_from(self, text: str) -> int:
        """Where the longest tail of ``text`` that could begin the marker starts (``len(text)``
        when none can)."""
        low = self._low
        for k in range(min(len(text), len(low) - 1), 0, -1):
            if text[-k:].lower() == low[:k]:
                return len(text) - k
        return len(text)

    @property
    def action(self) -> str:
        return "block" if self.block else "redact"


@dataclass(frozen=True, slots=True)
class Injection:
    """The system prompts one request gets, rendered with its canary."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    canary: Canary | None

    def apply(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the prompts in front (a new dict; ``body`` is not changed). Raises
        :class:`GatewayError` (422) for a completion whose prompt is token ids."""
        if endpoint == "chat":
            system = [{"role": "system", "content": t} for t in self.texts]
            return {**body, "messages": [*system, *body.get("messages", [])]}
        if endpoint != "completions":
            return body
        head = "\n\n".join(self.texts) + "\n\n"
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            return {**body, "prompt": head + prompt}
        if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
            return {**body, "prompt": [head + p for p in prompt]}
        raise GatewayError(
            Cause.UNPROCESSABLE,
            "Policy requires a system prompt for this request, which can be added only to a "
            "prompt written as text; send the prompt as a string (or a list of strings).",
            param="prompt",
        )


def plan(ids: tuple[str, ...], prompts: Mapping[str, SystemPrompt]) -> Injection:
    """The injection for the prompts ``ids`` names, in the configuration's order. A name the
    configuration lacks fails closed (503 ``policy_unavailable``): the policy and the
    configuration disagree, and the request must not go out without what policy asked for."""
    missing = sorted(set(ids) - prompts.keys())
    if missing:
        log.error(
            "policy asked for system prompt(s) %s, which the configuration does not define "
            "(system_prompts); requests that need them are refused",
            ", ".join(missing),
        )
        raise GatewayError(
            Cause.POLICY_UNAVAILABLE,
            "Policy asks for a system prompt this gateway is not configured with; nothing was "
            "sent.",
        )
    wanted = set(ids)
    chosen = [(i, p) for i, p in prompts.items() if i in wanted]
    marked = [p for _, p in chosen if p.canary]
    canary = Canary.fresh(any(p.on_leak == "block" for p in marked)) if marked else None
    texts = tuple(_render(p, canary) for _, p in chosen)
    return Injection(tuple(i for i, _ in chosen), texts, canary)


def _render(prompt: SystemPrompt, canary: Canary | None) -> str:
    if not prompt.canary or canary is None:
        return prompt.text
    if CANARY_SLOT in prompt.text:
        return prompt.text.replace(CANARY_SLOT, canary.token)
    return f"[{canary.token}] {prompt.text}"


class _CanaryStream:
    """One streamed text, screened for the marker: implements :class:`StreamRestorer`."""

    def __init__(self, canary: Canary, inner: StreamRestorer | None) -> None:
        self._canary = canary
        self._inner = inner
        self._pending = ""

    def _pass(self, text: str) -> str:
        return self._inner.feed(text) if self._inner is not None and text else text

    def feed(self, text: str) -> str:
        c = self._canary
        if c.tripped:
            self._pending = ""
            return ""
        buf = self._pending + text
        m = c._re.search(buf)
        if m is not None and c.block:
            c.leaks += 1
            c.tripped = True
            self._pending = ""
            return self._pass(buf[: m.start()])
        if m is not None:
            buf = c.screen(buf)
        cut = c.held_from(buf)
        self._pending = buf[cut:]
        return self._pass(buf[:cut])

    def flush(self) -> str:
        rest, self._pending = ("" if self._canary.tripped else self._pending), ""
        out = self._pass(rest)
        if self._inner is not None:
            tail = self._inner.flush()
            out += "" if self._canary.tripped else tail
        return out


class Screened:
    """The answer's restorer with the canary screen in front: implements :class:`Restorer`."""

    def __init__(self, canary: Canary, inner: Restorer | None) -> None:
        self.canary = canary
        self._inner = inner

    @property
    def new_pii(self) -> Mapping[str, int]:
        return self._inner.new_pii if self._inner is not None else {}

    @property
    def new_subjects(self) -> Set[str]:
        return self._inner.new_subjects if self._inner is not None else frozenset()

    def restore_text(self, text: str) -> str:
        text = self.canary.screen(text)
        return self._inner.restore_text(text) if self._inner is not None else text

    def stream(self, *, json_string: bool = False) -> StreamRestorer:
        inner = self._inner.stream(json_string=json_string) if self._inner is not None else None
        return _CanaryStream(self.canary, inner)

    def restore_json(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """Screen every text of every choice (in place), then restore placeholders."""
        c = self.canary
        choices = body.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            before = c.leaks
            for k, v in choice.items():
                if k != "logprobs":
                    choice[k] = _screen_all(c, v)
            if c.leaks > before and "logprobs" in choice:
                choice["logprobs"] = None
        if c.tripped:
            for choice in choices:  # type: ignore[union-attr]  # tripped only in a list
                if isinstance(choice, dict):
                    withhold(choice, endpoint)
            return body
        return self._inner.restore_json(endpoint, body) if self._inner is not None else body


def _screen_all(canary: Canary, value: Any) -> Any:
    if isinstance(value, str):
        return canary.screen(value)
    if isinstance(value, list):
        return [_screen_all(canary, v) for v in value]
    if isinstance(value, dict):
        return {k: _screen_all(canary, v) for k, v in value.items()}
    return value


def withhold(choice: dict[str, Any], endpoint: str) -> None:
    """A whole answer's choice, withheld: no text, a refusal that says why."""
    if endpoint == "completions":
        choice["text"] = ""
    else:
        choice["message"] = {"role": "assistant", "content": None, "refusal": WITHHELD}
    choice["finish_reason"] = "content_filter"
    if "logprobs" in choice:
        choice["logprobs"] = None
