"""A Redis protocol (RESP) proxy on 127.0.0.1 in front of a real Redis that refuses some commands,
as restricted managed Redis services and some proxies do with scripting (reliability F-4 (c)).

Commands arrive from clients as RESP arrays of bulk strings (``*N\\r\\n$len\\r\\narg\\r\\n...``);
a refused command is answered ``-ERR unknown command '<NAME>'`` and never reaches Redis, any
other is passed on and its reply relayed. Pipelines work: commands are handled one at a time and
the connection to Redis is the client's own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

__all__ = ["RespProxy"]


async def _read_command(reader: asyncio.StreamReader) -> tuple[bytes, list[bytes]] | None:
    """One command as sent (its raw bytes) and its arguments; None at the end."""
    head = await reader.readline()
    if not head:
        return None
    if not head.startswith(b"*"):  # an inline command (redis-cli's PING): pass it on whole
        return head, head.split()
    raw, args = bytearray(head), []
    for _ in range(int(head[1:])):
        size_line = await reader.readline()
        data = await reader.readexactly(int(size_line[1:]) + 2)
        raw += size_line + data
        args.append(bytes(data[:-2]))
    return bytes(raw), args


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    """One whole reply, RESP2 or RESP3 (which redis-py 8 speaks), nested ones included."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind = line[:1]
    if kind in (b"$", b"!", b"="):  # bulk string, blob error, verbatim string
        n = int(line[1:])
        return line + (await reader.readexactly(n + 2) if n >= 0 else b"")
    if kind in (b"*", b"~", b">", b"%", b"|"):  # array, set, push, map, attributes
        n = int(line[1:])
        out = bytearray(line)
        for _ in range(max(n, 0) * (2 if kind in (b"%", b"|") else 1)):
            out += await _read_reply(reader)
        if kind == b"|":  # attributes come before the reply they describe
            out += await _read_reply(reader)
        return bytes(out)
    return line  # + - : _ , # ( (simple string, error, integer, null, double, boolean, big)


class RespProxy:
    def __init__(self, redis_port: int, refuse: Iterable[str]) -> None:
        self.redis_port = redis_port
        self.refuse = {c.upper().encode() for c in refuse}
        self.refused = 0
        self.passed = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/15"  # the tests' database (tests.support.services)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.redis_port)
        try:
            while (cmd := await _read_command(reader)) is not None:
                raw, args = cmd
                name = args[0].upper() if args else b""
                if name in self.refuse:
                    self.refused += 1
                    writer.write(b"-ERR unknown command '" + name + b"'\r\n")
                else:
                    self.passed += 1
                    up_w.write(raw)
                    await up_w.drain()
                    writer.write(await _read_reply(up_r))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            up_w.close()
            writer.close()
            self._clients.discard(task)

    def __enter__(self) -> RespProxy:
        self._thread.start()

        async def start() -> None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
