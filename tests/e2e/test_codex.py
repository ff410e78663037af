"""OpenAI's Codex CLI, unmodified, pointed at the gateway as a custom Responses provider: the
real gateway with the real PII guard, the fake upstream on 127.0.0.1 speaking chat completions.

Codex sends what it sends (developer messages, function tools beside OpenAI's hosted web search
and its own namespaced sub-agent tools, ``client_metadata``, ``include``, ``reasoning``): the
test is that it works as a drop-in over ``/v1/responses`` — an answer, a shell command it runs
whose output goes back, personal data leaving only as placeholders and coming back restored.

Slow tier (``PORTCULLIS_SLOW=1``; ``make test-slow`` installs the pinned CLI into .tools/ with
``scripts/ensure-agents.sh``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.pii.test_gateway_pii import start_pseudonymising
from tests.support.chunks import chunk, sse
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CODEX = ROOT / ".tools/codex/node_modules/.bin/codex"


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, FakeDecider, str]]:
    if not CODEX.exists():
        pytest.fail("Codex is not installed: run scripts/ensure-agents.sh")
    running, decider, key = start_pseudonymising(
        tmp_path_factory.mktemp("gw-codex"), upstream_server
    )
    yield running, decider, key
    running.stop()


def codex(gw: RunningGateway, key: str, tmp: Path, prompt: str) -> tuple[int, str]:
    """``codex exec`` with the gateway as its only provider (no WebSocket, nothing else)."""
    home = tmp / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        'model_provider = "portcullis"\n'
        "[model_providers.portcullis]\n"
        'name = "Portcullis"\n'
        f'base_url = "{gw.base_url}"\n'
        'env_key = "PORTCULLIS_KEY"\n'
        'wire_api = "responses"\n'
        "supports_websockets = false\n"
    )
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(tmp), "CODEX_HOME": str(home), "PORTCULLIS_KEY": key}
    done = subprocess.run(
        [str(CODEX), "exec", "--skip-git-repo-check", "-m", "gpt-test", prompt],
        env=env, capture_output=True, text=True, timeout=120, cwd=work,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_codex_answers_through_the_gateway(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    code, out = codex(running, key, tmp_path, "Say hello")
    assert code == 0, out
    assert "Hello from the fake upstream." in out
    (sent,) = upstream.received
    body = sent["json"]
    assert sent["path"] == "/v1/chat/completions" and body["stream"] is True
    names = [t["function"]["name"] for t in body["tools"]]
    assert "exec_command" in names and "web_search" not in json.dumps(body["tools"])
    assert "client_metadata" not in body and key not in json.dumps(body)


def test_a_command_codex_runs_sends_its_output_back(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    call = {"cmd": "echo portcullis-ok"}
    upstream.sse_queue = [
        sse(
            chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                   "function": {"name": "exec_command", "arguments": json.dumps(call)}}]}, "tool_calls"),
            {"id": "c", "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}},
        ),
        sse(chunk({"content": "Done."}, "stop")),  # the next turn answers plainly: Codex stops
    ]  # fmt: skip
    code, out = codex(running, key, tmp_path, "Run echo portcullis-ok")
    assert code == 0, out
    second = upstream.received[1]["json"]
    tool = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool and tool[0]["tool_call_id"] == "call_1"
    assert "portcullis-ok" in tool[0]["content"]


def test_personal_data_leaves_as_placeholders_and_comes_back_restored(
    gw: tuple[RunningGateway, FakeDecider, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    running, _, key = gw
    prompt = "Draft a reply to John Smith at john.smith@example.com about his refund."
    assert codex(running, key, tmp_path, prompt)[0] == 0
    sent = json.dumps(upstream.received[-1]["json"])
    assert "John Smith" not in sent and "john.smith@example.com" not in sent
    person = re.search(r"Draft a reply to (<PERSON_[0-9a-f]+>)", sent)
    assert person, sent[-800:]
    upstream.raw_sse = sse(
        chunk({"content": f"Dear {person.group(1)}, your refund is on its way."})
    )
    code, out = codex(running, key, tmp_path, prompt)
    assert code == 0, out
    assert "Dear John Smith, your refund is on its way." in out
    assert "<PERSON_" not in out
