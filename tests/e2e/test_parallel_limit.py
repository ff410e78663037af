"""Requests in flight per key (``limits.max_parallel``, a key's own ``max_parallel``): the real
gateway, a slow fake backend on 127.0.0.1 and the openai SDK. While a key's requests fill its
slots, the next is a 429 ``parallel_limit_exceeded`` (the SDK's RateLimitError) and is not
forwarded; a slot comes back when its request is over — answered, streamed to the end, or left
by its client — and other keys are not held back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]


def _gateway(tmp_path: Path, upstream: FakeUpstream, max_parallel: int = 0) -> RunningGateway:
    settings = core_settings(tmp_path, upstream)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_parallel": max_parallel})}
    )
    return RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()


def _in_background(sdk: openai.OpenAI, n: int, **extra: Any) -> list[threading.Thread]:
    def ask() -> None:
        sdk.chat.completions.create(model="gpt-test", messages=HI, **extra)

    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def _until(check: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_key_s_requests_in_flight_are_held_to_its_limit(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = _gateway(tmp_path, upstream)
    try:
        key = gw.create_key(
            user="batch", jurisdiction="AU", sector="private", max_parallel=2,
            requests_per_minute=6, tokens_per_minute=0,
        )  # fmt: skip
        other = gw.create_key(user="ann", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        upstream.delay_s = 1.0
        busy = _in_background(sdk, 2)
        _until(lambda: len(upstream.received) == 2, "both requests at the backend")
        with pytest.raises(openai.RateLimitError) as refused:
            sdk.chat.completions.create(model="gpt-test", messages=HI)
        err = refused.value
        assert err.code == "parallel_limit_exceeded" and "at most 2 at once" in err.message
        assert err.response.headers["retry-after"] == "1"
        assert len(upstream.received) == 2  # the third was not forwarded
        # an administrator sees where the key stands: both slots taken, two requests spent
        key_id = key.split("_")[1]
        status, _, usage = gw.request(
            "GET", f"/admin/keys/{key_id}/usage", token=gw.ADMIN_TOKEN
        )  # fmt: skip
        assert status == 200 and usage["key_id"] == key_id, usage
        limits = usage["limits"]
        assert (limits["max_parallel"], limits["in_flight"]) == (2, 2), usage
        assert (limits["requests_per_minute"], limits["requests_left"]) == (6, 4), usage
        assert limits["tokens_left"] is None  # the key's own 0: no token limit
        assert usage["budgets"] == []  # none configured
        assert gw.request("GET", "/admin/keys/000000000000/usage", token=gw.ADMIN_TOKEN)[0] == 404
        assert gw.request("GET", f"/admin/keys/{key_id}/usage", token=key)[0] in (401, 403)
        _, _, text = gw.request("GET", "/metrics", parse=False)
        assert 'portcullis_limit_refusals_total{limit="parallel"} 1.0' in text.decode()
        assert 'portcullis_limit_refusals_total{limit="requests"} 0.0' in text.decode()
        # another key is not held back by this one's
        free = openai.OpenAI(base_url=gw.base_url, api_key=other, max_retries=0)
        upstream.delay_s = 0.0
        assert free.chat.completions.create(model="gpt-test", messages=HI).choices
        for t in busy:
            t.join(10)
        # answered: the slots are back
        usage = gw.request("GET", f"/admin/keys/{key_id}/usage", token=gw.ADMIN_TOKEN)[2]
        assert usage["limits"]["in_flight"] == 0, usage
        assert sdk.chat.completions.create(model="gpt-test", messages=HI).choices
        status, _, record = gw.request(
            "GET", f"/admin/keys/{key.split('_')[1]}", token=RunningGateway.ADMIN_TOKEN
        )
        assert status == 200 and record["max_parallel"] == 2
    finally:
        gw.stop()


def test_a_stream_holds_its_slot_until_it_ends_or_its_client_leaves(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = _gateway(tmp_path, upstream, max_parallel=1)  # the configured default
    try:
        key = gw.create_key(user="ann", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        upstream.chunk_delay_s = 0.2
        stream = sdk.chat.completions.create(model="gpt-test", messages=HI, stream=True)
        first = next(iter(stream))
        assert first is not None
        with pytest.raises(openai.RateLimitError) as refused:
            sdk.chat.completions.create(model="gpt-test", messages=HI)
        assert refused.value.code == "parallel_limit_exceeded"
        stream.close()  # the client leaves mid-stream: its slot comes back
        upstream.chunk_delay_s = 0.0

        def served() -> bool:
            try:
                return bool(sdk.chat.completions.create(model="gpt-test", messages=HI).choices)
            except openai.RateLimitError:
                return False

        _until(served, "the slot given back after the client left")
        # a key's own 0 is no limit, whatever the default
        free = gw.create_key(user="bob", jurisdiction="AU", sector="private", max_parallel=0)
        free_sdk = openai.OpenAI(base_url=gw.base_url, api_key=free, max_retries=0)
        upstream.delay_s = 0.5
        busy = _in_background(free_sdk, 3)
        _until(lambda: len(upstream.received) >= 5, "three at once on an unlimited key")
        for t in busy:
            t.join(10)
    finally:
        gw.stop()


def test_a_bad_limit_is_refused_naming_the_field(tmp_path: Path, upstream: FakeUpstream) -> None:
    gw = _gateway(tmp_path, upstream)
    try:
        for bad in (-1, 100_001, "3", 1.5):
            status, _, body = gw.request(
                "POST",
                "/admin/keys",
                {"user": "x", "jurisdiction": "AU", "sector": "private", "max_parallel": bad},
                token=RunningGateway.ADMIN_TOKEN,
            )
            assert status == 400 and "max_parallel" in body["error"]["message"], body
    finally:
        gw.stop()
