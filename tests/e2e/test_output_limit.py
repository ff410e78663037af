"""A backend's ``max_output_tokens``: a request asking for more output than its models give is
sent asking for that many (Claude Code asks for 32,000), on every API; below it, as asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, str]]:
    tmp: Path = tmp_path_factory.mktemp("limit")
    base = core_settings(tmp, upstream_server)
    backend = base.backends[0].model_copy(update={"max_output_tokens": 8192})
    settings = base.model_copy(update={"backends": (backend,)})
    running = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    yield running, running.create_key(user="dev", jurisdiction="AU", sector="private")
    running.stop()


def test_more_than_the_backend_gives_is_asked_as_its_limit(
    gw: tuple[RunningGateway, str], upstream: FakeUpstream
) -> None:
    running, key = gw
    sdk = openai.OpenAI(base_url=running.base_url, api_key=key, max_retries=0)
    sdk.chat.completions.create(model="gpt-test", messages=HI, max_tokens=32000)  # type: ignore[arg-type]
    sdk.chat.completions.create(model="gpt-test", messages=HI, max_completion_tokens=20000)  # type: ignore[arg-type]
    sdk.chat.completions.create(model="gpt-test", messages=HI, max_tokens=100)  # type: ignore[arg-type]
    sdk.completions.create(model="gpt-test", prompt="hi", max_tokens=9000)
    ant = anthropic.Anthropic(base_url=running.url, api_key=key, max_retries=0)
    with ant.messages.stream(model="gpt-test", max_tokens=32000, messages=HI) as stream:  # type: ignore[arg-type]
        stream.get_final_message()
    sent = [r["json"] for r in upstream.received]
    asked = [b.get("max_tokens", b.get("max_completion_tokens")) for b in sent]
    assert asked == [8192, 8192, 100, 8192, 8192]
    assert "max_tokens" not in sent[1]  # the field the caller used, not another
