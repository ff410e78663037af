"""The floor: a minimal OpenAI-shaped HTTP/1.1 server on raw asyncio (+uvloop), answering at once.

    python mock_upstream.py PORT

JSON: a fixed ~330-byte chat completion. SSE (request body contains '"stream": true' or
'"stream":true'): role chunk, 8 content chunks, finish chunk, usage, [DONE], chunked encoding.
"""

from __future__ import annotations

import asyncio
import json
import sys

JSON_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "The quick brown fox jumps over the lazy dog.",
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 10, "total_tokens": 90},
    }
).encode()

JSON_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(JSON_BODY)).encode()
    + b"\r\nConnection: keep-alive\r\n\r\n"
    + JSON_BODY
)


def _sse() -> bytes:
    def ev(obj: object) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench-model"}
    events = [
        ev(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        )
    ]
    for word in "The quick brown fox jumps over the lazy".split():
        events.append(
            ev(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
                    ],
                }
            )
        )
    events.append(ev({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append(
        ev(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 80, "completion_tokens": 8, "total_tokens": 88},
            }
        )
    )
    events.append(b"data: [DONE]\n\n")
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: keep-alive\r\n\r\n" + body
    )


SSE_RESPONSE = _sse()


class Proto(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4 : total]
            self.buf = self.buf[total:]
            stream = b'"stream": true' in body or b'"stream":true' in body
            self.t.write(SSE_RESPONSE if stream else JSON_RESPONSE)  # type: ignore[attr-defined]


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    port = int(sys.argv[1])
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Proto, "127.0.0.1", port, backlog=1024))
    print(f"mock upstream on {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
