"""The real gateway (real policy pack, real PII guard, real audit) in front of the real runtime
(tiny DeepSeek-V3 on the transformers engine), driven by the openai SDK: the `make run` path.

A Korean government principal asking for DeepSeek is denied DeepSeek's hosted API and served by
the self-hosted backend, whose facts come from ``inference.catalog.backend_entry``.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.config import Settings
from inference.catalog import backend_entry
from tests.integration.runtime.conftest import PORTCULLIS
from tests.integration.runtime.test_torch_engine import free_port, user
from tests.support.gateway import RunningGateway, write_admin_token

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def runtime_url(tiny_model: Path) -> Iterator[str]:
    port = free_port()
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
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "runtime exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, runtime_url: str) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("gw-runtime")
    self_hosted = backend_entry(
        runtime_url, "KR", "KR-11", "deepseek-chat", served_model="tiny-deepseek"
    )
    self_hosted["timeouts"] = {"connect_s": 2, "first_byte_s": 120, "idle_s": 60, "total_s": 300}
    self_hosted["priority"] = 20
    hosted = {
        "id": "deepseek-hosted",
        "base_url": f"http://127.0.0.1:{free_port()}/v1",
        "models": ["deepseek-chat"],
        "operator": "deepseek",
        "model_family": "deepseek",
        "model_origin": "CN",
        "hosting_country": "CN",
        "priority": 10,
    }
    settings = Settings.model_validate(
        {
            "data_dir": str(tmp),
            "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
            "backends": [hosted, self_hosted],
        }
    )
    gw = RunningGateway(settings).start()
    yield gw
    gw.stop()


def sdk(gw: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=120)


def test_korean_government_is_denied_hosted_and_served_by_the_runtime(
    gateway: RunningGateway,
) -> None:
    key = gateway.create_key(user="official", jurisdiction="KR", sector="government")
    with pytest.raises(openai.PermissionDeniedError) as exc:
        sdk(gateway, key).chat.completions.create(
            model="deepseek/deepseek-chat", messages=user("hello"), max_tokens=4
        )
    assert exc.value.code == "policy_denied"
    r = sdk(gateway, key).chat.completions.create(
        model="deepseek-chat",
        messages=user("hello"),
        max_tokens=6,
        temperature=0,
    )
    assert r.choices[0].message.content
    assert r.usage.completion_tokens >= 1


def test_streaming_through_the_gateway_matches_the_runtime(
    gateway: RunningGateway,
    runtime_url: str,
) -> None:
    key = gateway.create_key(user="dev", jurisdiction="KR", sector="private")
    direct = openai.OpenAI(base_url=runtime_url, api_key="none", max_retries=0).chat.completions
    want = direct.create(
        model="tiny-deepseek", messages=user("Good morning"), max_tokens=8, temperature=0
    )
    chunks = list(
        sdk(gateway, key).chat.completions.create(
            model="deepseek-chat",
            messages=user("Good morning"),
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == want.choices[0].message.content
    assert [c.usage.completion_tokens for c in chunks if c.usage] == [want.usage.completion_tokens]
