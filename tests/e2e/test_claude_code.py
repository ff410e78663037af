"""Anthropic's Claude Code CLI, unmodified, pointed at the gateway (``ANTHROPIC_BASE_URL``): the
real gateway with the real PII guard, the fake upstream on 127.0.0.1 speaking chat completions.

What Claude Code sends is what it sends (a 24-tool system, mid-conversation system messages,
``context_management``, adaptive thinking, ``output_config``): the test is that it works as a
drop-in — an answer, a tool it runs and whose result goes back, personal data that leaves only
as placeholders and comes back restored, a policy denial it shows.

Slow tier (``PORTCULLIS_SLOW=1``; ``make test-slow`` installs the pinned CLI into .tools/ with
``scripts/ensure-agents.sh``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pii.test_gateway_pii import start_pseudonymising
from tests.support.chunks import chunk, sse
from tests.support.fakes import FakeDecider, allow_all
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".tools/claude-code/node_modules/.bin/claude"


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, FakeDecider, str]]:
    if not CLAUDE.exists():
        pytest.fail("Claude Code is not installed: run scripts/ensure-agents.sh")
    running, decider, key = start_pseudonymising(tmp_path_factory.mktemp("gw-cc"), upstream_server)
    yield running, decider, key
    running.stop()


def claude(gw: RunningGateway, key: str, tmp: Path, prompt: str, *args: str) -> tuple[int, str]:
    """Claude Code in print mode, every model name the test backend's, no traffic elsewhere."""
    env = {
        **os.environ,
        "HOME": str(tmp),
        "ANTHROPIC_BASE_URL": gw.url,
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_SMALL_FAST_MODEL": "gpt-test",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "gpt-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    done = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--model", "gpt-test", *args],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_claude_code_answers_through_the_gateway(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    code, out = claude(running, key, tmp_path, "Say hello")
    assert code == 0, out
    assert "Hello from the fake upstream." in out
    (sent,) = upstream.received
    body = sent["json"]
    assert sent["path"] == "/v1/chat/completions" and body["stream"] is True
    assert len(body["tools"]) > 10  # Claude Code's own tools, as function tools
    assert body["messages"][0]["role"] == "system"
    # what Claude Code asks of Anthropic alone (thinking, effort, context management, caching,
    # metadata) does not reach a chat backend, which might refuse it
    assert set(body) == {"model", "messages", "max_tokens", "stream", "stream_options", "tools"}
    assert key not in json.dumps(body)


def test_a_tool_claude_code_runs_sends_its_result_back(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    call = {"command": "echo portcullis-ok", "description": "echo"}
    upstream.raw_sse = sse(
        chunk({"role": "assistant", "content": "Running it."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "Bash", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(call)}}]},
              "tool_calls"),
        {"id": "c", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}},
    )  # fmt: skip
    _, out = claude(
        running, key, tmp_path, "Run echo portcullis-ok",
        "--max-turns", "2", "--allowedTools", "Bash(echo:*)", "--output-format", "json",
    )  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    assert result["subtype"] == "error_max_turns", out  # the scripted backend never stops
    first, second = upstream.received[:2]
    assert "tool" not in [m["role"] for m in first["json"]["messages"]]
    tool = [m for m in second["json"]["messages"] if m["role"] == "tool"]
    assert tool == [{"role": "tool", "tool_call_id": "call_1", "content": "portcullis-ok"}]


def test_personal_data_leaves_as_placeholders_and_comes_back_restored(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    prompt = "Draft a reply to John Smith at john.smith@example.com about his refund."
    assert claude(running, key, tmp_path, prompt)[0] == 0
    sent = json.dumps(upstream.received[-1]["json"])
    assert "John Smith" not in sent and "john.smith@example.com" not in sent
    # (Claude Code's own system prompt holds words the name model takes for names too)
    person = re.search(r"Draft a reply to (<PERSON_[0-9a-f]+>)", sent)
    assert person, sent[:500]
    upstream.raw_sse = sse(
        chunk({"content": f"Dear {person.group(1)}, your refund is on its way."})
    )
    code, out = claude(running, key, tmp_path, prompt)
    assert code == 0, out
    assert "Dear John Smith, your refund is on its way." in out
    assert "<PERSON_" not in out


def test_a_policy_denial_is_shown_and_nothing_leaves(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, decider, key = gw
    rule = decider.rule

    def deny(policy_input: Any) -> dict[str, Any]:
        d = allow_all(policy_input)
        d.update(allow=False, permitted_backends=[], reasons=[
            {"rule": "org.no-coding-agents", "message": "Coding agents are not approved here."}])  # fmt: skip
        return d

    decider.rule = deny
    try:
        code, out = claude(running, key, tmp_path, "Say hello")
    finally:
        decider.rule = rule
    assert code != 0
    assert "403" in out and "org.no-coding-agents" in out, out
    assert upstream.received == []
