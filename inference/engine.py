"""The engine seam: what the OpenAI-compatible server needs from a model.

An engine turns a prompt (token ids) into a stream of :class:`Delta` values. Closing the stream
(``aclose()``, or cancelling the task that iterates it) cancels the generation: the engine stops
spending compute on it at its next step. Two implementations: :class:`inference.torch_engine.
TorchEngine` (transformers + torch, batching queue) and :class:`FakeEngine` (deterministic, for
tests of everything around the model).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "Delta",
    "Engine",
    "EngineError",
    "EngineStats",
    "FakeEngine",
    "Message",
    "SamplingParams",
]


class EngineError(RuntimeError):
    """The engine could not generate (load failure, device error). Message carries no content."""


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False


@dataclass(frozen=True, slots=True)
class Delta:
    """New text for one request, and whether it ended (``"stop"`` or ``"length"``)."""

    text: str
    tokens: int  # completion tokens so far
    finish_reason: str | None = None


@dataclass(slots=True)
class EngineStats:
    requests: int = 0
    finished: int = 0
    cancelled: int = 0
    tokens: int = 0
    batches: int = 0
    max_batch: int = 0
    joined: int = 0  # requests that joined a batch already decoding
    active: int = 0
    cancelled_tokens: list[int] = field(default_factory=list)  # tokens made before each cancel


@runtime_checkable
class Engine(Protocol):
    model_name: str
    max_model_len: int
    stats: EngineStats

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def generate(self, prompt: list[int], params: SamplingParams) -> AsyncIterator[Delta]: ...

    def overloaded(self) -> bool:
        """True when the queue is full: the server answers 503 rather than queue more."""
        ...


class FakeEngine:
    """Deterministic engine: token ids are characters' code points, output is ``reply`` repeated.

    ``delay_s`` per token makes cancellation observable.
    """

    def __init__(
        self,
        model_name: str = "fake-deepseek",
        *,
        reply: str = "hello world ",
        delay_s: float = 0.0,
        max_model_len: int = 4096,
        max_waiting: int = 1000,
    ) -> None:
        self.model_name = model_name
        self.max_model_len = max_model_len
        self.stats = EngineStats()
        self._reply = reply
        self._delay = delay_s
        self._max_waiting = max_waiting

    def overloaded(self) -> bool:
        return self.stats.active >= self._max_waiting

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        text = "".join(f"<{m.role}>{m.content}" for m in messages) + "<assistant>"
        return self.encode(text)

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    async def generate(self, prompt: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        self.stats.requests += 1
        self.stats.active += 1
        made = 0
        done = False
        try:
            for i in range(params.max_tokens):
                if self._delay:
                    await asyncio.sleep(self._delay)
                made = i + 1
                self.stats.tokens += 1
                last = made == params.max_tokens
                yield Delta(self._reply[i % len(self._reply)], made, "length" if last else None)
            done = True
        finally:
            self.stats.active -= 1
            if done:
                self.stats.finished += 1
            else:
                self.stats.cancelled += 1
                self.stats.cancelled_tokens.append(made)
