"""The OpenAI-compatible server over the deterministic FakeEngine, driven by the openai SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web

from inference.engine import FakeEngine
from inference.server import create_app


async def start(engine: FakeEngine) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(create_app(engine), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeEngine, openai.AsyncOpenAI]]:
    engine = FakeEngine("fake-deepseek", reply="abcdefgh", delay_s=0.0)
    runner, url = await start(engine)
    client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    yield engine, client
    await client.close()
    await runner.cleanup()


async def test_chat_returns_text_and_usage(served: Any) -> None:
    _, client = served
    r = await client.chat.completions.create(
        model="fake-deepseek", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    assert r.choices[0].message.content == "abcde"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    assert r.usage.prompt_tokens == len("<user>hi<assistant>")


async def test_chat_stream_with_include_usage(served: Any) -> None:
    _, client = served
    stream = await client.chat.completions.create(
        model="fake-deepseek",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "abcdef"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


@pytest.mark.parametrize(
    ("stop", "expected", "reason"),
    [
        (["cde"], "ab", "stop"),
        ("h", "abcdefg", "stop"),
        (["zz"], "abcdefgha", "length"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_completions_apply_stop_strings_without_leaking_them(
    served: Any,
    stop: Any,
    expected: str,
    reason: str,
    stream: bool,
) -> None:
    _, client = served
    if stream:
        chunks = [
            c
            async for c in await client.completions.create(
                model="fake-deepseek", prompt="x", max_tokens=9, stop=stop, stream=True
            )
        ]
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        fin = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        r = await client.completions.create(
            model="fake-deepseek", prompt="x", max_tokens=9, stop=stop
        )
        text, fin = r.choices[0].text, r.choices[0].finish_reason
    assert (text, fin) == (expected, reason)


async def test_models_lists_the_served_model(served: Any) -> None:
    _, client = served
    models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-deepseek"]


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (
            {"model": "other", "messages": [{"role": "user", "content": "x"}]},
            openai.NotFoundError,
            "model_not_found",
        ),
        ({"model": "fake-deepseek", "messages": []}, openai.BadRequestError, "invalid_request"),
        (
            {"model": "fake-deepseek", "messages": [{"role": "user", "content": "x"}], "n": 2},
            openai.BadRequestError,
            "invalid_request",
        ),
        (
            {
                "model": "fake-deepseek",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 5000,
            },
            openai.BadRequestError,
            "context_length_exceeded",
        ),
        (
            {
                "model": "fake-deepseek",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            openai.BadRequestError,
            "invalid_request",
        ),
        (
            {"model": "fake-deepseek", "messages": [{"role": "wizard", "content": "x"}]},
            openai.BadRequestError,
            "invalid_request",
        ),
    ],
)
async def test_bad_requests_get_openai_error_envelopes(
    served: Any, body: dict[str, Any], error: type[Exception], code: str
) -> None:
    _, client = served
    with pytest.raises(error) as exc:  # type: ignore[call-overload]
        await client.chat.completions.create(**body)
    assert exc.value.code == code  # type: ignore[attr-defined]


async def test_error_messages_do_not_quote_content(served: Any) -> None:
    _, client = served
    secret = "TAXFILE 123 456 782"
    with pytest.raises(openai.BadRequestError) as exc:
        await client.chat.completions.create(
            model="fake-deepseek",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": secret}}]}
            ],
        )
    assert secret not in str(exc.value.body)


async def test_client_disconnect_cancels_generation() -> None:
    engine = FakeEngine("fake-deepseek", delay_s=0.02)
    runner, url = await start(engine)
    client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="fake-deepseek",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2000,
            stream=True,
        )
        got = 0
        async for _ in stream:
            got += 1
            if got == 3:
                break
        await stream.close()
        for _ in range(100):
            if engine.stats.cancelled:
                break
            await asyncio.sleep(0.02)
        assert engine.stats.cancelled == 1
        assert engine.stats.cancelled_tokens[0] < 200
        # non-streaming: the client times out, the handler is cancelled, generation stops
        with pytest.raises(openai.APITimeoutError):
            await client.with_options(timeout=0.3).chat.completions.create(
                model="fake-deepseek", messages=[{"role": "user", "content": "x"}], max_tokens=2000
            )
        for _ in range(100):
            if engine.stats.cancelled == 2:
                break
            await asyncio.sleep(0.02)
        assert engine.stats.cancelled == 2 and engine.stats.active == 0
    finally:
        await client.close()
        await runner.cleanup()


async def test_chat_without_max_tokens_is_bounded_by_the_server_default(served: Any) -> None:
    _, client = served
    r = await client.chat.completions.create(
        model="fake-deepseek", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.usage.completion_tokens == 64 and r.choices[0].finish_reason == "length"


async def test_api_key_is_required_when_configured_but_not_for_health() -> None:
    import aiohttp

    runner = web.AppRunner(create_app(FakeEngine("fake-deepseek"), api_key="s3cret-key"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for key, ok in (("wrong", False), ("s3cret-key", True)):
            client = openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0)
            if ok:
                assert [m.id for m in (await client.models.list()).data] == ["fake-deepseek"]
            else:
                with pytest.raises(openai.AuthenticationError) as exc:
                    await client.models.list()
                assert "s3cret" not in str(exc.value.body)
            await client.close()
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health") as r:
            assert r.status == 200
    finally:
        await runner.cleanup()


async def test_a_full_engine_answers_503_instead_of_queueing() -> None:
    engine = FakeEngine("fake-deepseek", delay_s=0.05, max_waiting=1)
    runner, url = await start(engine)
    client = openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="fake-deepseek",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=50,
            stream=True,
        )
        async for _ in stream:
            break  # the first stream is generating now
        with pytest.raises(openai.InternalServerError) as exc:
            await client.chat.completions.create(
                model="fake-deepseek", messages=[{"role": "user", "content": "y"}], max_tokens=2
            )
        assert exc.value.status_code == 503 and exc.value.code == "overloaded"
        await stream.close()
    finally:
        await client.close()
        await runner.cleanup()
