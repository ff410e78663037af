"""Reliability F-5's transport failures through the gateway: a backend that resets the
connection after reading the request, one whose TLS handshake fails (an https URL answered in
plain HTTP), and one that refuses connections. Each gives the caller a 502 in OpenAI's shape
with no upstream text; the audit record holds the status and each attempt's error class. A TLS
failure is not retried on its backend but falls back to the next permitted one; a refused
connection is retried (nothing was sent); a reset after the request went out is not repeated,
there or anywhere (the backend may have done the work: RFC 9112 §9.3.1)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import write_admin_token
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway, _free_port
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration


class RawServer:
    """A TCP listener that reads a request, then resets (``reset``), answers plain HTTP
    (``plain``: what an https client sees as a failed handshake) or says nothing while it holds
    the connection (``silent``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.settimeout(2)
            try:
                conn.recv(65536)
                if self.mode == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif self.mode == "silent":
                    self._stop.wait(5)
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def site(
    tmp_path: Path, upstream: FakeUpstream
) -> Iterator[tuple[RunningGateway, MemoryAuditSink, dict[str, RawServer]]]:
    servers = {
        "reset": RawServer("reset"),
        "plain": RawServer("plain"),
        "silent": RawServer("silent"),
    }
    facts = {"operator": "openai", "model_family": "gpt", "model_origin": "US",
             "hosting_country": "US",
             "timeouts": {"connect_s": 2, "first_byte_s": 2, "idle_s": 2, "total_s": 5}}  # fmt: skip
    raw: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "admin": {"token_file": str(write_admin_token(tmp_path)), "token_env": None},
        "limits": {"requests_per_minute": 0, "tokens_per_minute": 0},
        "backends": [
            {"id": "resets", "base_url": f"http://127.0.0.1:{servers['reset'].port}/v1",
             "models": ["m-reset", "m-reset-or-good"], "max_retries": 1, "priority": 10, **facts},
            {"id": "bad-tls", "base_url": f"https://127.0.0.1:{servers['plain'].port}/v1",
             "models": ["m-tls", "m-both"], "max_retries": 2, "priority": 10, **facts},
            {"id": "refuses", "base_url": f"http://127.0.0.1:{_free_port()}/v1",
             "models": ["m-closed"], "max_retries": 1, "priority": 10, **facts},
            {"id": "good", "base_url": upstream.base_url, "models": ["m-both", "m-reset-or-good"],
             "priority": 20, **facts},
            {"id": "silent", "base_url": f"http://127.0.0.1:{servers['silent'].port}/v1",
             "models": ["m-silent"], "max_retries": 2, "priority": 10,
             **{**facts, "timeouts": {"connect_s": 2, "first_byte_s": 0.5, "idle_s": 2,
                                      "total_s": 5}}},
        ],
    }  # fmt: skip
    audit = MemoryAuditSink()
    gw = RunningGateway(
        Settings.model_validate(raw),
        Components(policy=FakeDecider(), audit=audit, pii_disabled=True),
    ).start()
    yield gw, audit, servers
    gw.stop()
    for s in servers.values():
        s.close()


def _ask(gw: RunningGateway, key: str, model: str) -> tuple[int, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    status, _, answer = gw.request("POST", "/v1/chat/completions", body, token=key)
    return status, answer


def test_transport_failures_are_502s_with_their_error_class_on_the_record(
    site: tuple[RunningGateway, MemoryAuditSink, dict[str, RawServer]], upstream: FakeUpstream
) -> None:
    gw, audit, servers = site
    key = gw.create_key(user="f5", jurisdiction="US", sector="private")
    cases = [
        ("m-reset", 502, "disconnect", 1),
        ("m-tls", 502, "tls", 1),
        ("m-closed", 502, "connect", 2),
    ]
    for n, (model, status, outcome, tries) in enumerate(cases, start=1):
        got, answer = _ask(gw, key, model)
        assert got == status, (model, answer)
        assert answer["error"]["type"] and answer["error"]["code"], answer
        assert "HTTP/1.1" not in answer["error"]["message"] and "ok" != answer["error"]["message"]
        record = audit.wait_completions(n)[-1]
        assert record["status"] == status and record["error_code"] == answer["error"]["code"]
        assert [a["outcome"] for a in record["attempts"]] == [outcome] * tries, record["attempts"]
    assert "TLS" in _ask(gw, key, "m-tls")[1]["error"]["message"]
    assert servers["reset"].connections == 1  # max_retries 1, yet not repeated: it was sent

    # nor does a reset after sending fall back to the next permitted backend
    got, answer = _ask(gw, key, "m-reset-or-good")
    assert got == 502 and "not repeated" in answer["error"]["message"], answer
    record = audit.wait_completions(len(cases) + 2)[-1]
    assert [(a["backend"], a["outcome"]) for a in record["attempts"]] == [("resets", "disconnect")]
    assert servers["reset"].connections == 2 and upstream.received == []

    # a TLS failure falls back at once to the next permitted backend, which answers
    before = servers["plain"].connections
    got, answer = _ask(gw, key, "m-both")
    assert got == 200, answer
    record = audit.wait_completions(len(cases) + 3)[-1]
    assert [(a["backend"], a["outcome"]) for a in record["attempts"]] == [
        ("bad-tls", "tls"), ("good", "ok")]  # fmt: skip
    assert servers["plain"].connections == before + 1 and len(upstream.received) == 1

    # a backend that takes the request and says nothing: a 504 at its first-byte deadline,
    # not retried (it may be working on it), the record's attempt class "timeout"
    t0 = time.monotonic()
    got, answer = _ask(gw, key, "m-silent")
    took = time.monotonic() - t0
    assert got == 504 and answer["error"]["code"], answer
    assert 0.5 <= took < 0.5 + 1.0, took
    record = audit.wait_completions(len(cases) + 4)[-1]
    assert record["status"] == 504 and record["error_code"] == answer["error"]["code"]
    assert [(a["backend"], a["outcome"]) for a in record["attempts"]] == [("silent", "timeout")]
    assert servers["silent"].connections == 1
