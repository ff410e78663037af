# ruff: noqa: RUF001 - look-alike and non-Latin characters on purpose
"""What still evades detection today (see docs/pii-residual-risk.md).

These tests record current behaviour, so a change — better or worse — is noticed and the
residual-risk document updated with it. An assertion that something is *not* found here is a
known gap, not a requirement.
"""

from __future__ import annotations

import re

from gateway.pii.engine import Analyzer
from gateway.pii.fake import FakeDetector
from gateway.pii.guard import Guard
from gateway.policy.contract import PiiAction
from tests.unit.pii.conftest import found


def test_gap_numbers_spelled_out_in_words_are_not_found(patterns: Analyzer) -> None:
    text = "my TFN is one two three four five six seven eight two"
    assert found(patterns, text) == []


def test_gap_value_split_across_two_messages_is_not_found(patterns: Analyzer) -> None:
    first, second = "My TFN starts 123 456", "and ends 782"
    assert "AU_TFN" not in {e for e, _ in found(patterns, first)}
    assert "AU_TFN" not in {e for e, _ in found(patterns, second)}
    assert ("AU_TFN", "123 456 782") in found(patterns, "My TFN 123 456 782")


def test_gap_value_split_across_content_parts_is_not_found(patterns: Analyzer) -> None:
    assert patterns.analyze(["TFN 123 45", "6 782"], None) == [[], []]


def test_gap_cjk_names_are_not_found_by_the_english_model(full: Analyzer) -> None:
    assert "PERSON" not in {e for e, _ in found(full, "我的名字是王小明。")}


def test_gap_value_with_a_separator_every_character_of_two_kinds(patterns: Analyzer) -> None:
    # Two different separators in a row break the run: "1-/2" is not joined.
    assert "AU_TFN" not in {e for e, _ in found(patterns, "TFN 1-/2-/3-/4-/5-/6-/7-/8-/2")}


def test_covered_fullwidth_zero_width_and_spaced_variants(patterns: Analyzer) -> None:
    for text in ("TFN １２３４５６７８２", "TFN 123\u200b456\u200b782", "TFN 1 2 3 4 5 6 7 8 2"):
        assert "AU_TFN" in {e for e, _ in found(patterns, text)}


async def test_gap_placeholder_altered_by_the_model_is_not_restored() -> None:
    g = Guard(FakeDetector({"Alice Example": "PERSON"}), b"s" * 32)
    body = {"messages": [{"role": "user", "content": "I am Alice Example"}]}
    a = g.apply(await g.inspect("chat", body, None), lambda _e: PiiAction.PSEUDONYMISE, "t")
    ph = re.search(r"<PERSON_[0-9a-f]+>", a.body["messages"][0]["content"])
    assert ph
    bare = ph.group()[1:-1]  # the model dropped the angle brackets
    assert a.restorer.restore_text(f"Hi {bare}") == f"Hi {bare}"
    assert a.restorer.restore_text(f"Hi {ph.group()}") == "Hi Alice Example"
