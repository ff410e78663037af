"""A backend's own name for a model (``upstream_model``: a vLLM path, a deployment name) is
what the backend is sent, never what the caller is shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

INTERNAL = "/models/Internal-GPT-Test-v1"


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    tmp: Path = tmp_path_factory.mktemp("names")
    settings = core_settings(tmp, upstream_server)
    primary = settings.backends[0].model_copy(update={"upstream_model": {"gpt-test": INTERNAL}})
    settings = settings.model_copy(update={"backends": (primary, *settings.backends[1:])})
    gateway = RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()
    yield gateway
    gateway.stop()


def test_json_and_stream_answers_carry_the_callers_model_name(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    msg = [{"role": "user", "content": "x"}]
    answer = sdk.chat.completions.create(model="gpt-test", messages=msg)
    assert upstream.received[-1]["json"]["model"] == INTERNAL
    assert answer.model == "gpt-test"
    chunks = list(sdk.chat.completions.create(model="fast", messages=msg, stream=True))
    assert upstream.received[-1]["json"]["model"] == INTERNAL
    assert chunks and {c.model for c in chunks} == {"gpt-test"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
