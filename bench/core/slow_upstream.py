"""A backend whose streams are slow: one chunk per ``INTERVAL`` seconds, as a model generating.

    python slow_upstream.py PORT [INTERVAL_S [JSON_DELAY_S [JITTER]]]

``POST /v1/chat/completions`` with ``"stream": true`` answers ``max_tokens`` content chunks
(default 60), one every ``INTERVAL_S`` (default 1.0), then the finish chunk, usage and
``[DONE]``; without it, a small chat completion after ``JSON_DELAY_S`` (default 0: at once),
or with ``JITTER`` (a fraction, default 0) after a delay drawn uniformly from ``JSON_DELAY_S``
times (1 ± ``JITTER``), as a real model's answers vary.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys

from aiohttp import web

INTERVAL = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
JSON_DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
JITTER = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench-model"}
ANSWER = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "bench-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}  # fmt: skip


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        if JSON_DELAY:
            await asyncio.sleep(JSON_DELAY * (1 + JITTER * random.uniform(-1, 1)))
        return web.json_response(ANSWER)
    n = int(body.get("max_tokens") or 60)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(n):
        delta = {"content": f"word{i} "}
        await resp.write(
            _event({**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        )
        await asyncio.sleep(INTERVAL)
    await resp.write(
        _event({**BASE, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
    await resp.write(_event({**BASE, "choices": [], "usage": usage}) + b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
