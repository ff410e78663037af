"""Calls to backends over pooled aiohttp connections, with per-backend deadlines.

aiohttp rather than httpx: as a proxy's upstream client under concurrency our probe measured
httpx's AsyncClient several times slower (docs/benchmarks.md). Upstream bodies and credentials
are never echoed to the caller or logged: failures become :class:`UpstreamFailure` with a kind
and a status — and, when a backend refuses a request (400, 404, 413, 422), the OpenAI
envelope's ``error.code`` and ``error.param`` where each is a short identifier that holds no
personal shape (``unsupported_parameter``, ``n``, ``messages[0].content``): what the caller needs
to mend the request. Never the message, which may quote the request.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from audit.shapes import looks_personal
from gateway.config.backends import BackendSpec

__all__ = ["JsonAnswer", "Probe", "StreamAnswer", "Upstream", "UpstreamFailure"]

_decode = msgspec.json.Decoder().decode
# A backend refusing the request itself (not failing): its error's code and param are passed on.
REFUSALS = frozenset({400, 404, 413, 422})
_REFUSAL_BYTES = 16384
_DETAIL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,63}\Z")
_PATHS = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings"}


class UpstreamFailure(Exception):
    """kind: connect | tls | disconnect | timeout | status | protocol. ``retryable`` only before
    any byte relayed; a ``tls`` failure is not retried on its backend (a certificate does not mend
    in milliseconds) but, as nothing was sent, the next permitted backend may be asked.
    ``connect``: no connection was made, nothing was sent. ``disconnect``: the connection was
    lost once the request was on its way (a reset, or closed before the status line): the backend
    may have received it and done the work, so, as RFC 9112 §9.3.1 asks of a request that is not
    idempotent, it is not repeated anywhere.
    ``code`` / ``param``: a refusing backend's error code and parameter (see the module)."""

    def __init__(
        self,
        kind: str,
        status: int | None = None,
        retry_after: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(f"upstream {kind}" + (f" {status}" if status else ""))
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.code = code
        self.param = param

    @property
    def retryable(self) -> bool:
        return self.kind == "connect" or self.status in (429, 502, 503)


@dataclass(slots=True)
class JsonAnswer:
    status: int
    body: dict[str, Any]


@dataclass(slots=True)
class StreamAnswer:
    response: aiohttp.ClientResponse
    idle_s: float
    ends_at: float  # event-loop time at which the backend's total deadline runs out

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; a gap longer than the backend's idle deadline is a timeout,
        and so is a stream still running at its total deadline (chunks that keep coming do
        not extend it)."""
        content = self.response.content
        loop = asyncio.get_running_loop()
        while True:
            left = self.ends_at - loop.time()
            if left <= 0:
                raise UpstreamFailure("timeout")
            try:
                async with asyncio.timeout(min(self.idle_s, left)):
                    chunk = await content.readany()
            except TimeoutError:
                raise UpstreamFailure("timeout") from None
            except aiohttp.ClientError:
                raise UpstreamFailure("protocol") from None
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self.response.close()


@dataclass(frozen=True, slots=True)
class Probe:
    """What a health check found: healthy or not, how (``ok``, ``status``, ``timeout``,
    ``connect``, ``tls``, ``protocol``), the HTTP status if one came, and the seconds it took."""

    ok: bool
    kind: str
    status: int | None
    seconds: float


class Upstream:
    """One connection pool per keep-alive time in the catalogue (aiohttp keeps it per pool), so
    each backend's idle connections are closed before the backend would close them."""

    def __init__(self, credentials: Mapping[str, str | None]) -> None:
        self._credentials = dict(credentials)
        self._sessions: dict[float, aiohttp.ClientSession] | None = None
        self._header_cache: dict[str, dict[str, str]] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def credential(self, backend_id: str) -> str | None:
        """The credential value in use for a backend (compared on reload; never logged)."""
        return self._credentials.get(backend_id)

    def set_credentials(self, credentials: Mapping[str, str | None]) -> None:
        """The backends' credentials after a configuration reload (read at each send)."""
        self._credentials = dict(credentials)
        self._header_cache = {}

    async def start(self) -> None:
        self._sessions = {}

    def _session(self, keepalive_s: float) -> aiohttp.ClientSession:
        assert self._sessions is not None, "Upstream.start() was not called"
        session = self._sessions.get(keepalive_s)
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=512, keepalive_timeout=keepalive_s, ttl_dns_cache=300
            )
            session = self._sessions[keepalive_s] = aiohttp.ClientSession(
                connector=connector,
                json_serialize=json.dumps,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return session

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, None
        for session in (sessions or {}).values():
            await session.close()

    def _headers(self, backend: BackendSpec) -> dict[str, str]:
        headers = self._header_cache.get(backend.id)
        if headers is None:
            headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
            secret = self._credentials.get(backend.id)
            if secret:
                cred = backend.credential
                headers[cred.header] = f"{cred.scheme} {secret}".strip() if cred.scheme else secret
            self._header_cache[backend.id] = headers
        return headers

    def _connect_timeout(self, connect_s: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(connect_s)
        if timeout is None:
            timeout = self._timeouts[connect_s] = aiohttp.ClientTimeout(
                total=None, connect=connect_s, sock_connect=connect_s, sock_read=None
            )
        return timeout

    async def _send(
        self, backend: BackendSpec, endpoint: str, body: bytes, traceparent: str | None = None
    ) -> aiohttp.ClientResponse:
        """Send and read the status line and headers; the caller bounds it with a deadline.
        ``traceparent``: the W3C trace context of the attempt's span, when the request is traced
        (gateway.tracing)."""
        headers = self._headers(backend)
        if traceparent is not None:
            headers = {**headers, "traceparent": traceparent}
        try:
            resp = await self._session(backend.timeouts.keepalive_s).post(
                backend.base_url + _PATHS[endpoint],
                data=body,
                headers=headers,
                timeout=self._connect_timeout(backend.timeouts.connect_s),
                allow_redirects=False,
            )
        except TimeoutError:
            raise UpstreamFailure("timeout") from None
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch, ssl.SSLError):
            # the handshake failed (a certificate, a protocol): nothing was sent
            raise UpstreamFailure("tls") from None
        except aiohttp.ClientConnectorError:
            # no connection (refused, unreachable, DNS): nothing was sent
            raise UpstreamFailure("connect") from None
        except (aiohttp.ClientConnectionError, OSError):
            # the connection was lost after the request began to go out: it may have arrived
            raise UpstreamFailure("disconnect") from None
        except aiohttp.ClientError:
            raise UpstreamFailure("protocol") from None
        if resp.status >= 400:
            retry_after = resp.headers.get("Retry-After")
            code = param = None
            if resp.status in REFUSALS:
                code, param = await _refusal(resp)
            resp.release()
            raise UpstreamFailure("status", resp.status, retry_after, code, param)
        return resp

    async def probe(self, backend: BackendSpec, path: str, timeout_s: float) -> Probe:
        """A health check: ``GET base_url + path`` with the backend's credential; healthy when
        it answers 2xx within ``timeout_s`` (the body read, at most 1 MiB, and dropped). Never
        raises."""
        headers = {k: v for k, v in self._headers(backend).items() if k != "Content-Type"}
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session(backend.timeouts.keepalive_s).get(
                    backend.base_url + path, headers=headers, allow_redirects=False
                ) as resp:
                    await resp.content.read(1 << 20)
                    ok = 200 <= resp.status < 300
                    kind = "ok" if ok else "status"
                    return Probe(ok, kind, resp.status, time.perf_counter() - t0)
        except TimeoutError:
            kind = "timeout"
        except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch, ssl.SSLError):
            kind = "tls"
        except aiohttp.ClientConnectorError:
            kind = "connect"
        except (aiohttp.ClientError, OSError):
            kind = "protocol"
        return Probe(False, kind, None, time.perf_counter() - t0)

    async def _post(
        self, backend: BackendSpec, endpoint: str, body: bytes, traceparent: str | None = None
    ) -> aiohttp.ClientResponse:
        t = backend.timeouts
        try:
            async with asyncio.timeout(min(t.first_byte_s, t.total_s)):
                return await self._send(backend, endpoint, body, traceparent)
        except TimeoutError:
            raise UpstreamFailure("timeout") from None

    async def call_json(
        self, backend: BackendSpec, endpoint: str, body: bytes, traceparent: str | None = None
    ) -> JsonAnswer:
        """One deadline object for the whole call: first byte, then moved out to the total."""
        t = backend.timeouts
        start = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(min(t.first_byte_s, t.total_s)) as deadline:
                resp = await self._send(backend, endpoint, body, traceparent)
                if t.first_byte_s < t.total_s:
                    deadline.reschedule(start + t.total_s)
                try:
                    raw = await resp.read()
                except aiohttp.ClientError:
                    raise UpstreamFailure("protocol") from None
                finally:
                    resp.release()
        except TimeoutError:  # either deadline, before or after the headers
            raise UpstreamFailure("timeout") from None
        try:
            doc = _decode(raw)
        except msgspec.DecodeError:
            raise UpstreamFailure("protocol", resp.status) from None
        if not isinstance(doc, dict):
            raise UpstreamFailure("protocol", resp.status)
        # The list the gateway reads (and restores) must be a list: anything else is no answer.
        items = doc.get("data" if endpoint == "embeddings" else "choices")
        if items is not None and not isinstance(items, list):
            raise UpstreamFailure("protocol", resp.status)
        return JsonAnswer(resp.status, doc)

    async def open_stream(
        self, backend: BackendSpec, endpoint: str, body: bytes, traceparent: str | None = None
    ) -> StreamAnswer:
        """Send and wait for the headers (first-byte deadline); the total deadline counts from
        here, as for :meth:`call_json`, and bounds the whole stream."""
        ends_at = asyncio.get_running_loop().time() + backend.timeouts.total_s
        resp = await self._post(backend, endpoint, body, traceparent)
        ctype = resp.headers.get("Content-Type", "")
        if "text/event-stream" not in ctype:
            resp.close()
            raise UpstreamFailure("protocol", resp.status)
        return StreamAnswer(resp, backend.timeouts.idle_s, ends_at)


async def _refusal(resp: aiohttp.ClientResponse) -> tuple[str | None, str | None]:
    """``error.code`` and ``error.param`` of a refusal's OpenAI envelope, each only if it is a
    short identifier with no personal shape; the first 16 KB are read, the rest dropped."""
    raw = bytearray()
    try:
        while len(raw) < _REFUSAL_BYTES:
            chunk = await resp.content.read(_REFUSAL_BYTES - len(raw))
            if not chunk:
                break
            raw += chunk
        doc = json.loads(raw)
    except (aiohttp.ClientError, ValueError, UnicodeDecodeError):
        return None, None
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, None

    def plain(value: object) -> str | None:
        if isinstance(value, str) and _DETAIL.match(value) and not looks_personal(value):
            return value
        return None

    return plain(err.get("code")), plain(err.get("param"))
