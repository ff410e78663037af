"""Streams and the token budget.

The gateway asks each backend for stream usage (``stream_options.include_usage``) even when the
caller did not, charges the budget what the backend reports, records it in the audit, and keeps
the usage chunk from a caller that did not ask for it. A backend configured with
``stream_usage: false`` is not asked: its streams are charged their estimate (before that,
streams without usage were refunded in full, so streaming bypassed the budget).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def _settings(tmp_path: Path, upstream: FakeUpstream, stream_usage: bool) -> Settings:
    settings = core_settings(tmp_path, upstream)
    return settings.model_copy(
        update={
            "limits": settings.limits.model_copy(update={"tokens_per_minute": 1000}),
            "backends": tuple(
                b.model_copy(update={"stream_usage": stream_usage}) for b in settings.backends
            ),
        }
    )


@contextmanager
def _gateway(
    tmp_path: Path, upstream: FakeUpstream, stream_usage: bool, audit: MemoryAuditSink | None = None
) -> Iterator[tuple[RunningGateway, str]]:
    """A running gateway (tokens_per_minute 1000, ``stream_usage`` on every backend) and a key."""
    gw = RunningGateway(
        _settings(tmp_path, upstream, stream_usage),
        Components(policy=FakeDecider(), audit=audit or MemoryAuditSink(), pii_disabled=True),
    ).start()
    try:
        yield gw, gw.create_key(user="alice", jurisdiction="AU", sector="private")
    finally:
        gw.stop()


def _stream_until_refused(sdk: openai.OpenAI, tries: int = 20) -> tuple[int, str | None]:
    """Stream ``tries`` chat completions (each reserves ~300 tokens: max_tokens 300 + the
    prompt); how many were served, and the error code of the first refusal."""
    for served in range(tries):
        try:
            list(
                sdk.chat.completions.create(
                    model="gpt-test",
                    messages=[{"role": "user", "content": "x"}],
                    max_tokens=300,
                    stream=True,
                )
            )
        except openai.RateLimitError as exc:
            return served, exc.code
    return tries, None


def _chunks(body: bytes) -> list[Any]:
    events = [b[6:] for b in body.split(b"\n\n") if b.startswith(b"data: ")]
    return [json.loads(e) for e in events if e != b"[DONE]"]


def test_backend_without_stream_usage_is_charged_the_estimate(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _gateway(tmp_path, upstream, stream_usage=False) as (gw, key):
        served, code = _stream_until_refused(
            openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        )
        assert code == "token_budget_exceeded"
        assert 2 <= served <= 4
        assert all("stream_options" not in r["json"] for r in upstream.received)


def test_streams_are_charged_the_usage_the_backend_reports(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with _gateway(tmp_path, upstream, stream_usage=True) as (gw, key):
        # The fake upstream's streams use about 13 tokens: twenty fit in 1000, where charging
        # the ~300-token estimate would refuse the fourth.
        served, code = _stream_until_refused(
            openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        )
        assert (served, code) == (20, None)
        assert all(
            r["json"]["stream_options"] == {"include_usage": True} for r in upstream.received
        )


def test_usage_the_caller_did_not_ask_for_is_recorded_not_relayed(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    audit = MemoryAuditSink()
    with _gateway(tmp_path, upstream, stream_usage=True, audit=audit) as (gw, key):
        chat = {
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "max_tokens": 50,
        }
        status, _, body = gw.request("POST", "/v1/chat/completions", chat, token=key, parse=False)
        assert status == 200
        chunks = _chunks(body)
        assert chunks and all(c["choices"] for c in chunks)  # no usage-only chunk
        assert all("usage" not in c for c in chunks)  # nor OpenAI's "usage": null
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text.strip() == upstream.reply.strip()
        assert audit.wait_completions(1)[-1]["usage"]["total_tokens"] > 0

        # A caller that asks gets the usage chunk, as from the backend.
        asked = {**chat, "stream_options": {"include_usage": True}}
        status, _, body = gw.request("POST", "/v1/chat/completions", asked, token=key, parse=False)
        chunks = _chunks(body)
        assert status == 200 and chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["total_tokens"] > 0
        assert upstream.received[-1]["json"]["stream_options"] == {"include_usage": True}


def test_backend_that_refuses_stream_options_is_asked_once_then_not(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A strict backend answers 400 to the ``stream_options`` the gateway adds: the caller still
    gets its stream (the call is repeated without it), the audit shows both calls, and that
    backend is not asked for usage again. A 400 for another reason stays the caller's 400 and
    does not mark the backend."""
    audit = MemoryAuditSink()
    with _gateway(tmp_path, upstream, stream_usage=True, audit=audit) as (gw, key):
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        upstream.mode, upstream.error_status = "error", 400  # refuses everything
        with pytest.raises(openai.BadRequestError):
            list(sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}], max_tokens=5, stream=True))  # fmt: skip
        assert ["stream_options" in r["json"] for r in upstream.received] == [True, False]

        upstream.reset()
        upstream.refuse_stream_options = True
        for _ in range(2):
            text = "".join(
                c.choices[0].delta.content or ""
                for c in sdk.chat.completions.create(
                    model="gpt-test",
                    messages=[{"role": "user", "content": "x"}],
                    max_tokens=5,
                    stream=True,
                )
            )
            assert text.strip() == upstream.reply.strip()
        # First stream: refused with stream_options, then served without; second: asked once.
        assert ["stream_options" in r["json"] for r in upstream.received] == [True, False, False]
        first = audit.wait_completions(3)[-2]
        assert [(a["outcome"], a["status"]) for a in first["attempts"]] == [
            ("stream_options_refused", 400),
            ("ok", None),
        ]
        assert first["status"] == 200
