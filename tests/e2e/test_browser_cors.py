"""A browser tool on another origin calls the gateway: real headless Chromium (Debian's
``chromium``), driven by Playwright, ``fetch`` from a page served on 127.0.0.1 with the headers
the openai JavaScript SDK sends. The fake upstream's record shows what reached it.

Slow tier (``PORTCULLIS_SLOW=1``, ``make test-slow`` installs Chromium where it is missing)."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway, _free_port
from tests.support.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's notes advise for a closed network (no background connections, no QUIC).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

FETCH = """async ([url, key, body, stream]) => {
  try {
    const r = await fetch(url, {
      method: body ? "POST" : "GET",
      headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json",
                "X-Stainless-Lang": "js", "X-Stainless-Package-Version": "5.0.0",
                "X-Stainless-Retry-Count": "0"},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return {ok: true, status: r.status, text, rid: r.headers.get("x-request-id"),
            remaining: r.headers.get("x-ratelimit-remaining-requests")};
  } catch (e) {
    return {ok: false, error: String(e)};
  }
}"""


@pytest.fixture
def page_origin() -> Iterator[int]:
    """A blank page on 127.0.0.1:PORT: the browser tool's origin."""

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>tool</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Blank)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()


def test_a_page_on_a_listed_origin_calls_the_api_and_other_origins_cannot(
    tmp_path: Path, upstream: FakeUpstream, page_origin: int
) -> None:
    from playwright.sync_api import sync_playwright

    tool = f"http://127.0.0.1:{page_origin}"
    settings = core_settings(tmp_path, upstream, server={"cors_origins": [tool]})
    gw = RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()
    try:
        key = gw.create_key(user="web", jurisdiction="AU", sector="private")
        chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello"}]}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page()
            page.goto(tool + "/")
            url = gw.base_url + "/chat/completions"

            plain = page.evaluate(FETCH, [url, key, chat, False])
            assert plain["ok"] and plain["status"] == 200, plain
            assert '"choices"' in plain["text"]
            assert plain["rid"] and plain["rid"].startswith("req_")  # exposed to the page
            assert plain["remaining"] is not None
            streamed = page.evaluate(FETCH, [url, key, {**chat, "stream": True}, True])
            assert streamed["ok"] and streamed["status"] == 200, streamed
            assert streamed["text"].rstrip().endswith("data: [DONE]")
            models = page.evaluate(FETCH, [gw.base_url + "/models", key, None, False])
            assert models["ok"] and '"gpt-test"' in models["text"]
            refused = page.evaluate(FETCH, [url, "pcs_wrong", chat, False])
            assert refused["ok"] and refused["status"] == 401  # the page can read why
            sent = len(upstream.received)
            assert sent == 2

            # not the admin API, from any origin
            admin = page.evaluate(
                FETCH, [gw.url + "/admin/keys", RunningGateway.ADMIN_TOKEN, None, False]
            )
            assert not admin["ok"] and "Failed to fetch" in admin["error"], admin

            # the same page from an unlisted origin (localhost is not 127.0.0.1 to a browser)
            page.goto(f"http://localhost:{page_origin}/")
            other = page.evaluate(FETCH, [url, key, chat, False])
            assert not other["ok"] and "Failed to fetch" in other["error"], other
            assert len(upstream.received) == sent  # its preflight was refused: nothing sent
            browser.close()
    finally:
        gw.stop()
