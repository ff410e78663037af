"""System prompts and the canary screen (gateway.prompts): planning, injection, the screen on
whole and streamed answers, alone and in front of the PII guard's restorer."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.config.prompts import SystemPrompt
from gateway.errors import Cause, GatewayError
from gateway.pii.restore import PlaceholderRestorer
from gateway.policy.contract import MalformedDecision, parse_decision
from gateway.prompts import REDACTED, WITHHELD, Canary, Screened, plan
from gateway.streaming import _Restoring

TOKEN = "pc-0123456789abcdef"
PROMPTS = {
    "first": SystemPrompt(text="Be careful."),
    "slot": SystemPrompt(text="Marker {canary} inside.", on_leak="redact"),
    "plain": SystemPrompt(text="No marker {canary} here.", canary=False, on_leak="redact"),
}


def test_plan_keeps_the_configurations_order_and_marks_each_prompt() -> None:
    inj = plan(("slot", "first"), PROMPTS)
    assert inj.ids == ("first", "slot")
    assert inj.canary is not None and inj.canary.block  # one of them asks for block
    token = inj.canary.token
    assert inj.texts == (f"[{token}] Be careful.", f"Marker {token} inside.")
    assert plan(("plain",), PROMPTS).canary is None  # no prompt carries one
    assert plan(("plain",), PROMPTS).texts == ("No marker {canary} here.",)
    assert not plan(("slot",), PROMPTS).canary.block  # type: ignore[union-attr]
    assert plan(("first",), PROMPTS).canary.token != token  # type: ignore[union-attr]


def test_a_prompt_the_configuration_lacks_fails_closed() -> None:
    with pytest.raises(GatewayError) as err:
        plan(("first", "missing"), PROMPTS)
    assert err.value.cause is Cause.POLICY_UNAVAILABLE
    assert "missing" not in err.value.message  # the log names it, the caller is not told


def test_apply_puts_the_prompts_first_and_leaves_the_body_alone() -> None:
    inj = plan(("first",), PROMPTS)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    out = inj.apply("chat", body)
    assert out["messages"][0] == {"role": "system", "content": inj.texts[0]}
    assert out["messages"][1:] == body["messages"] and len(body["messages"]) == 1
    head = inj.texts[0] + "\n\n"
    assert inj.apply("completions", {"prompt": "go"})["prompt"] == head + "go"
    assert inj.apply("completions", {"prompt": ["a", "b"]})["prompt"] == [head + "a", head + "b"]
    assert inj.apply("embeddings", {"input": "x"}) == {"input": "x"}
    for ids in ([1, 2], [[1, 2]], []):
        with pytest.raises(GatewayError) as err:
            inj.apply("completions", {"prompt": ids})
        assert err.value.status == 422 and err.value.param == "prompt"


def test_configuration_checks_ids_and_bounds() -> None:
    Settings.model_validate({"system_prompts": {"gov.notice-1": {"text": "x"}}})
    for bad in ({"Gov": {"text": "x"}}, {"a b": {"text": "x"}}, {"ok": {"text": ""}},
                {"ok": {"text": "x", "on_leak": "log"}}, {"ok": {"text": "x", "extra": 1}}):  # fmt: skip
        with pytest.raises(ValidationError):
            Settings.model_validate({"system_prompts": bad})


def _decision(obligations: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1",
        "allow": True,
        "permitted_backends": ["b"],
        "pii_actions": {"b": {"*": "allow"}},
        "reasons": [],
        "obligations": obligations,
        "bundle_revision": "r1",
    }


def test_the_decision_carries_prompt_ids_apart_from_its_scalar_obligations() -> None:
    d = parse_decision(
        _decision({"retention_class": "standard", "system_prompts": ["a", "b"]}), ("b",)
    )
    assert d.system_prompts == ("a", "b") and d.obligations == {"retention_class": "standard"}
    assert d.to_json()["obligations"]["system_prompts"] == ["a", "b"]
    plain = parse_decision(_decision({"system_prompts": []}), ("b",))
    assert plain.system_prompts == () and "system_prompts" not in plain.to_json()["obligations"]
    for bad in ("a", [1], ["Bad Id"], ["a\n"], [{"id": "a"}]):
        with pytest.raises(MalformedDecision):
            parse_decision(_decision({"system_prompts": bad}), ("b",))


def _streamed(canary: Canary, text: str, sizes: list[int]) -> tuple[list[str], str]:
    sr = Screened(canary, None).stream()
    out, i = [], 0
    for n in sizes:
        out.append(sr.feed(text[i : i + n]))
        i += n
    out.append(sr.feed(text[i:]))
    out.append(sr.flush())
    return out, "".join(out)


@pytest.mark.parametrize("seed", range(20))
def test_a_stream_never_releases_a_piece_of_the_marker(seed: int) -> None:
    rnd = random.Random(seed)
    marker = "".join(c.upper() if rnd.random() < 0.3 else c for c in TOKEN)  # any case
    text = f"pre p pc- pc-0 {marker} mid {TOKEN} end p"
    sizes = [rnd.randint(1, 5) for _ in range(40)]
    redact = Canary(TOKEN, block=False)
    pieces, whole = _streamed(redact, text, sizes)
    assert whole == f"pre p pc- pc-0 {REDACTED} mid {REDACTED} end p" and redact.leaks == 2
    released = ""
    for piece in pieces:
        released += piece
        assert "pc-0123" not in released.lower()
    block = Canary(TOKEN, block=True)
    _, whole = _streamed(block, text, sizes)
    assert whole == "pre p pc- pc-0 " and block.tripped and block.leaks == 1


def test_the_hold_back_is_no_longer_than_the_marker_less_one() -> None:
    c = Canary(TOKEN, block=True)
    sr = Screened(c, None).stream()
    assert sr.feed("abc pc-0123456789abcde") == "abc "  # 18 held: could still be the marker
    assert sr.feed("X") == "pc-0123456789abcdeX"  # it was not
    assert sr.feed("tip") == "ti" and sr.flush() == "p"


def test_whole_answers_under_block_are_withheld_in_every_choice() -> None:
    c = Canary(TOKEN, block=True)
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps({"q": TOKEN.upper()})}}
            ]}, "finish_reason": "tool_calls", "logprobs": {"content": [{"token": "pc"}]}},
        ]
    }  # fmt: skip
    out = Screened(c, None).restore_json("chat", body)
    assert c.leaks == 1 and c.tripped
    for choice in out["choices"]:
        assert choice["message"] == {"role": "assistant", "content": None, "refusal": WITHHELD}
        assert choice["finish_reason"] == "content_filter"
    assert out["choices"][1]["logprobs"] is None
    done = Screened(Canary(TOKEN, block=True), None).restore_json(
        "completions", {"choices": [{"text": f"x {TOKEN}", "finish_reason": "length"}]}
    )
    assert done["choices"][0] == {"text": "", "finish_reason": "content_filter"}


def test_whole_answers_under_redact_keep_their_shape_and_tool_arguments_stay_json() -> None:
    c = Canary(TOKEN, block=False)
    args = json.dumps({"q": f"say {TOKEN}"})
    body = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": [{"type": "text", "text": TOKEN}],
             "reasoning_content": f"I see {TOKEN}", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}]},
             "finish_reason": "stop", "logprobs": {"content": []}},
            {"index": 1, "message": {"role": "assistant", "content": "clean"}, "finish_reason": "stop",
             "logprobs": {"content": []}},
        ]
    }  # fmt: skip
    out = Screened(c, None).restore_json("chat", body)
    msg = out["choices"][0]["message"]
    assert msg["content"] == [{"type": "text", "text": REDACTED}]
    assert msg["reasoning_content"] == f"I see {REDACTED}"
    assert json.loads(msg["tool_calls"][0]["function"]["arguments"]) == {"q": f"say {REDACTED}"}
    assert out["choices"][0]["logprobs"] is None  # it spelled the marker
    assert out["choices"][1]["logprobs"] == {"content": []}  # this one did not
    assert c.leaks == 3 and not c.tripped


def test_placeholders_are_restored_behind_the_screen_whole_and_streamed() -> None:
    pii = PlaceholderRestorer({"<EMAIL_1>": "ada@example.org"}, [], None)
    c = Canary(TOKEN, block=False)
    screened = Screened(c, pii)
    body = {"choices": [{"message": {"content": f"<EMAIL_1> {TOKEN}"}}]}
    assert screened.restore_json("chat", body)["choices"][0]["message"]["content"] == (
        f"ada@example.org {REDACTED}"
    )
    text = f"to <EMAIL_1>, {TOKEN}."
    sr = screened.stream()
    out = "".join(sr.feed(text[i : i + 2]) for i in range(0, len(text), 2)) + sr.flush()
    assert out == f"to ada@example.org, {REDACTED}."


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "logprobs": {"content": [{"token": "x"}]}}]}  # fmt: skip


def test_a_tripped_stream_says_why_drops_tool_calls_and_ends_content_filtered() -> None:
    restoring = _Restoring(Screened(Canary(TOKEN, block=True), None))
    first = _chunk({"role": "assistant", "content": "Hello "})
    restoring.apply(first)
    assert first["choices"][0]["delta"]["content"] == "Hello "
    assert first["choices"][0]["logprobs"] is None  # always dropped under the screen
    hit = _chunk({"content": f"[{TOKEN}] secret"})
    restoring.apply(hit)
    assert hit["choices"][0]["delta"] == {"content": "[", "refusal": WITHHELD}
    later = _chunk(
        {"content": "more", "tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    )
    restoring.apply(later)
    assert later["choices"][0]["delta"] == {"content": ""}
    end = _chunk({}, finish="stop")
    restoring.apply(end)
    assert end["choices"][0]["finish_reason"] == "content_filter"
    assert restoring.drain(chat=True) is None
