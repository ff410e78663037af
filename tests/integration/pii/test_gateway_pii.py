"""Through the running gateway with the real guard: the fake upstream's record is the evidence."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink, allow_all
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

VALUES = ("John Smith", "123 456 782", "js@example.com")
PROMPT = "I am John Smith, TFN 123 456 782, mail js@example.com"


def _rule(actions: dict[str, str]) -> Any:
    def rule(policy_input: Mapping[str, Any]) -> dict[str, Any]:
        d = allow_all(policy_input)
        d["pii_actions"] = {b: dict(actions) for b in d["permitted_backends"]}
        return d

    return rule


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, FakeDecider, str]]:
    tmp: Path = tmp_path_factory.mktemp("gw-pii")
    decider = FakeDecider(_rule({"*": "pseudonymise"}))
    running = RunningGateway(
        core_settings(tmp, upstream_server), Components(policy=decider, audit=MemoryAuditSink())
    ).start()
    key = running.create_key(user="alice", jurisdiction="AU-NSW", sector="private", team="eng")
    yield running, decider, key
    running.stop()


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


def test_upstream_never_sees_the_values_and_the_answer_is_restored(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream
) -> None:
    running, decider, key = gw
    decider.rule = _rule({"*": "pseudonymise"})
    upstream.mode = "echo"
    status, _, body = running.request("POST", "/v1/chat/completions", _chat(PROMPT), token=key)
    assert status == 200
    sent = json.dumps(upstream.received[-1]["json"])
    assert not any(v in sent for v in VALUES)
    assert json.loads(body["choices"][0]["message"]["content"]) == PROMPT


def test_streamed_placeholder_split_over_chunks_is_restored(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream
) -> None:
    running, decider, key = gw
    decider.rule = _rule({"*": "pseudonymise"})
    upstream.mode = "echo"
    running.request("POST", "/v1/chat/completions", _chat(PROMPT), token=key)
    m = re.search(r"<PERSON_[0-9a-f]+>", json.dumps(upstream.received[-1]["json"]))
    assert m
    ph = m.group()
    upstream.mode = "normal"
    upstream.stream_chunks = ["Hi ", ph[:3], ph[3:9], ph[9:], "!"]
    status, _, raw = running.request(
        "POST", "/v1/chat/completions", _chat(PROMPT, stream=True), token=key, parse=False
    )
    assert status == 200
    text = ""
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            event = json.loads(line[6:])
            for choice in event.get("choices") or ():
                text += choice.get("delta", {}).get("content") or ""
    assert text == "Hi John Smith!"


def test_block_gives_403_naming_types_and_nothing_is_forwarded(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream
) -> None:
    running, decider, key = gw
    decider.rule = _rule({"*": "pseudonymise", "AU_TFN": "block"})
    status, _, body = running.request("POST", "/v1/chat/completions", _chat(PROMPT), token=key)
    assert status == 403
    assert body["error"]["code"] == "pii_blocked"
    assert body["error"]["entity_types"] == ["AU_TFN"]
    assert not any(v in json.dumps(body) for v in VALUES)
    assert upstream.received == []
