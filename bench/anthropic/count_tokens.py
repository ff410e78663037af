"""``POST /v1/messages/count_tokens``'s counting, side by side: DeepSeek's own tokenizer (laid out
as its chat template) against the bytes-over-four estimate the gateway falls back to, on
prompts shaped like Claude Code's (a long system prompt, tool definitions with JSON schemas, a
conversation of tool calls and results) and on plain prose, English and Chinese.

    .venv/bin/python bench/anthropic/count_tokens.py [--rounds 200]

Prints, per prompt: its size, the tokenizer's count, the estimate and how far the estimate is
off (estimate / count), and the time per count of each (best of ``--rounds``, the same process,
alternating) with their ratio. What it answers: how wrong a count without the tokenizer is, and
what the exact count costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.token_count import TokenCounter

LOREM = (
    "The gateway decides, for every request, who is asking and under which jurisdiction, what "
    "the prompt contains and what each backend really is, and keeps a record of it. "
)
HANZI = "数据治理网关为每个请求判断提问者及其管辖范围、提示内容以及每个后端的真实情况，并留下记录。"  # noqa: RUF001 - Chinese punctuation


def _tool(i: int) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Reads a file from the workspace and returns its lines. " * 3,
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "An absolute path."},
                    "offset": {"type": "integer", "minimum": 0},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 2000},
                },
                "required": ["path"],
            },
        },
    }


def claude_code_like(turns: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": LOREM * 120}]
    for i in range(turns):
        messages.append({"role": "user", "content": f"Fix the failing test number {i}. " * 4})
        messages.append(
            {
                "role": "assistant",
                "content": "Reading the file first.",
                "tool_calls": [
                    {
                        "id": f"c{i}",
                        "type": "function",
                        "function": {
                            "name": "tool_1",
                            "arguments": json.dumps({"path": f"/src/m{i}.py"}),
                        },
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"c{i}",
                "content": "def f(x):\n    return x + 1\n" * 30,
            }
        )
    return {"model": "m", "messages": messages, "tools": [_tool(i) for i in range(25)]}


def prose(text: str, repeat: int) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text * repeat}]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    counter = TokenCounter()
    await counter.count(prose("warm", 1), "deepseek")  # the tokenizer loaded before timing
    cases = {
        "Claude Code-like, 5 turns": claude_code_like(5),
        "Claude Code-like, 40 turns": claude_code_like(40),
        "English prose, 40 KB": prose(LOREM, 250),
        "Chinese prose, 40 KB": prose(HANZI, 300),
    }
    print("| prompt | KB | DeepSeek tokenizer | estimate (bytes/4) | estimate / count | "
          "µs per count, tokenizer | µs, estimate | tokenizer / estimate |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, chat in cases.items():
        size = len(json.dumps(chat, ensure_ascii=False).encode()) / 1024
        exact, how = await counter.count(chat, "deepseek")
        guess, _ = await counter.count(chat, "other")
        assert how == "deepseek-tokenizer"
        best = {"deepseek": float("inf"), "other": float("inf")}
        for _ in range(args.rounds):
            for family in best:
                t = time.perf_counter()
                await counter.count(chat, family)
                best[family] = min(best[family], time.perf_counter() - t)
        print(
            f"| {name} | {size:.0f} | {exact:,} | {guess:,} | {guess / exact:.2f} | "
            f"{best['deepseek'] * 1e6:,.0f} | {best['other'] * 1e6:,.0f} | "
            f"{best['deepseek'] / best['other']:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
