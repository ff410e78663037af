"""Reference point: the bare forwarder a Python gateway cannot beat on this stack.

A litestar route that parses the body, re-encodes it, forwards it to the upstream with a shared
aiohttp session and relays the JSON or the SSE bytes — no auth, policy, limits or audit.

    python forwarder.py UPSTREAM_PORT PORT
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, post
from litestar.response import Stream

UPSTREAM = f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions"
state: dict[str, Any] = {}


async def startup() -> None:
    state["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def shutdown() -> None:
    await state["session"].close()


@post("/v1/chat/completions", status_code=200)
async def chat(request: Request[Any, Any, Any]) -> Response[Any]:
    body = msgspec.json.decode(await request.body())
    data = msgspec.json.encode(body)
    resp = await state["session"].post(
        UPSTREAM, data=data, headers={"Content-Type": "application/json"}
    )
    if not body.get("stream"):
        raw = await resp.read()
        resp.release()
        return Response(raw, media_type="application/json")

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        finally:
            resp.close()

    return Stream(relay(), media_type="text/event-stream")


app = Litestar([chat], on_startup=[startup], on_shutdown=[shutdown])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
