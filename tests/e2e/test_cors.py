"""Cross-origin calls from browser tools (``server.cors_origins``), at the HTTP level: the
preflight, the headers on answers, and what stays closed. tests/e2e/test_browser_cors.py drives
the same from a real browser."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

TOOL = "https://chat.example.org"
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


def _gateway(tmp: Path, upstream: FakeUpstream, origins: list[str]) -> RunningGateway:
    settings = core_settings(tmp, upstream, server={"cors_origins": origins})
    return RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()


@pytest.fixture
def gw(tmp_path: Path, upstream: FakeUpstream) -> Iterator[RunningGateway]:
    g = _gateway(tmp_path, upstream, [TOOL, "http://localhost:3000"])
    yield g
    g.stop()


def _preflight(gw: RunningGateway, path: str, origin: str, method: str = "POST", headers: str = ""):  # type: ignore[no-untyped-def]
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return gw.request("OPTIONS", path, headers=asked)


def test_a_listed_origin_gets_its_preflight_and_the_answers_headers(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    key = gw.create_key(user="web", jurisdiction="AU", sector="private")
    asked = "authorization, content-type, x-stainless-os, x-stainless-retry-count"
    status, headers, _ = _preflight(gw, "/v1/chat/completions", TOOL, headers=asked)
    assert status == 204
    assert headers["access-control-allow-origin"] == TOOL and headers["vary"] == "Origin"
    assert headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert headers["access-control-allow-headers"] == asked
    assert headers["access-control-max-age"] == "600" and headers["x-request-id"]
    assert upstream.received == []  # a preflight is answered by the gateway alone

    status, headers, body = gw.request(
        "POST", "/v1/chat/completions", CHAT, token=key, headers={"Origin": TOOL}
    )
    assert status == 200 and body["choices"]
    assert headers["access-control-allow-origin"] == TOOL
    exposed = headers["access-control-expose-headers"]
    assert "x-request-id" in exposed and "x-ratelimit-remaining-requests" in exposed
    status, headers, body = gw.request("GET", "/v1/models", token=key, headers={"Origin": TOOL})
    assert status == 200 and headers["access-control-allow-origin"] == TOOL
    # an error answer carries them too, or the page could not read why it was refused
    status, headers, body = gw.request(
        "POST", "/v1/chat/completions", CHAT, token="pcs_bad", headers={"Origin": TOOL}
    )
    assert status == 401 and headers["access-control-allow-origin"] == TOOL


def test_other_origins_methods_and_paths_get_no_cross_origin_access(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    key = gw.create_key(user="web", jurisdiction="AU", sector="private")
    for origin, method, asked in (
        ("https://evil.example.net", "POST", ""),
        ("https://chat.example.org.evil.net", "POST", ""),
        ("http://chat.example.org", "POST", ""),  # another scheme is another origin
        ("null", "POST", ""),
        (TOOL, "DELETE", ""),
        (TOOL, "POST", "x-bad header"),
    ):
        status, headers, body = _preflight(gw, "/v1/chat/completions", origin, method, asked)
        assert status == 403 and body["error"]["code"] == "cors_not_allowed", origin
        assert "access-control-allow-origin" not in headers
    # an unlisted origin's request is served (CORS is the browser's rule), without the headers
    status, headers, _ = gw.request(
        "POST", "/v1/chat/completions", CHAT, token=key, headers={"Origin": "https://evil.example"}
    )
    assert status == 200 and "access-control-allow-origin" not in headers
    # the admin API, health and metrics never answer cross-origin
    for path in ("/admin/keys", "/healthz", "/metrics"):
        status, headers, _ = _preflight(gw, path, TOOL, "GET")
        assert "access-control-allow-origin" not in headers, path
        status, headers, _ = gw.request(
            "GET", path, token=RunningGateway.ADMIN_TOKEN, headers={"Origin": TOOL}
        )
        assert "access-control-allow-origin" not in headers, path
    assert len(upstream.received) == 1


def test_without_origins_listed_nothing_answers_cross_origin(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    g = _gateway(tmp_path, upstream, [])
    try:
        key = g.create_key(user="web", jurisdiction="AU", sector="private")
        status, headers, _ = _preflight(g, "/v1/chat/completions", TOOL)
        assert status == 405 and "access-control-allow-origin" not in headers
        status, headers, _ = g.request(
            "POST", "/v1/chat/completions", CHAT, token=key, headers={"Origin": TOOL}
        )
        assert status == 200 and "access-control-allow-origin" not in headers
    finally:
        g.stop()


def test_every_origin_is_possible_but_announced(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="portcullis"):
        g = _gateway(tmp_path, upstream, ["*"])
    try:
        status, headers, _ = _preflight(g, "/v1/models", "https://anywhere.example", "GET")
        assert status == 204 and headers["access-control-allow-origin"] == "*"
        assert "vary" not in headers
    finally:
        g.stop()
    assert any("cors_origins lists '*'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "origin",
    ["https://chat.example.org/", "https://chat.example.org/app", "chat.example.org",
     "HTTPS://CHAT.EXAMPLE.ORG", "ftp://x.org", "https://exa mple.org", ""],
)  # fmt: skip
def test_an_origin_that_no_browser_sends_is_refused_at_start(
    tmp_path: Path, upstream: FakeUpstream, origin: str
) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        core_settings(tmp_path, upstream, server={"cors_origins": [origin]})
