"""A minimal OTLP/HTTP traces sink for the benchmarks: answers every POST to ``/v1/traces`` with
200 ``{}`` and counts the spans (printed at exit), so a traced gateway pays for real exports.

    python bench/core/otlp_sink.py PORT
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

_SPANS = [0]


async def traces(request: web.Request) -> web.Response:
    doc = json.loads(await request.read())
    _SPANS[0] += sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    return web.json_response({})


def main() -> None:
    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    try:
        web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
    finally:
        print(f"spans received: {_SPANS[0]}", flush=True)


if __name__ == "__main__":
    main()
