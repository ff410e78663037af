"""The real detector: cache on resent history, entity filter skips NER, guard end to end."""

from __future__ import annotations

import json

from gateway.config.pii import PiiSettings
from gateway.pii import build_guard
from gateway.pii.detector import FastDetector
from gateway.pii.engine import Analyzer
from gateway.policy.contract import PiiAction


async def test_resent_history_is_served_from_the_cache(full: Analyzer) -> None:
    det = FastDetector(PiiSettings(executor="inline"), analyzer=full)
    history = ["Hello, I am John Smith from Berlin.", "My TFN is 123 456 782."]
    first = await det.analyze(history, None)
    assert det.misses == 2 and det.hits == 0
    second = await det.analyze([*history, "And my email is js@example.com"], None)
    assert det.hits == 2 and det.misses == 3
    assert second[:2] == first
    assert [f.entity_type for f in second[2]] == ["EMAIL_ADDRESS"]


async def test_identifier_only_entity_set_does_not_run_ner(patterns: Analyzer) -> None:
    det = FastDetector(PiiSettings(executor="inline"), analyzer=patterns)
    [fs] = await det.analyze(["John Smith, TFN 123 456 782"], frozenset({"AU_TFN"}))
    assert [f.entity_type for f in fs] == ["AU_TFN"]


async def test_build_guard_pseudonymises_and_restores_with_the_real_model() -> None:
    guard = build_guard(PiiSettings(), b"k" * 32)
    try:
        assert await guard.ready()
        body = {"messages": [{"role": "user", "content": "I am John Smith, SSN 123-45-6789."}]}
        ins = await guard.inspect("chat", body, None)
        assert ins.counts == {"PERSON": 1, "US_SSN": 1}
        applied = guard.apply(ins, lambda _e: PiiAction.PSEUDONYMISE, "t")
        sent = json.dumps(applied.body)
        assert "John Smith" not in sent and "6789" not in sent
        content = applied.body["messages"][0]["content"]
        answer = {"choices": [{"message": {"content": f"Noted: {content}"}}]}
        restored = applied.restorer.restore_json("chat", answer)
        assert restored["choices"][0]["message"]["content"] == (
            "Noted: I am John Smith, SSN 123-45-6789."
        )
    finally:
        await guard.close()
