# ruff: noqa: RUF001 - look-alike and non-Latin characters on purpose
"""What still evades detection today (see docs/pii-residual-risk.md).

These tests record current behaviour, so a change — better or worse — is noticed and the
residual-risk document updated with it. An assertion that something is *not* found here is a
known gap, not a requirement.
"""

from __future__ import annotations

import re

from gateway.pii.engine import Analyzer, AnalyzerOptions
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


def test_gap_a_lower_case_name_is_missed_by_default_and_seen_without_windows(
    full: Analyzer,
) -> None:
    """``pii.ner_windows``: the model reads windows around capitalised tokens, so a name typed
    in lower case never reaches it; with windows off it reads the whole text and finds it."""
    text = "please forward the file to john smith before friday."
    assert found(full, text) == []
    whole = Analyzer(AnalyzerOptions(ner_windows=False))  # its own engine, built from them
    assert ("PERSON", "john smith") in found(whole, text)


def test_gap_a_card_number_in_code_is_quiet_by_default_and_reported_when_strict(
    patterns: Analyzer,
) -> None:
    """``pii.quiet_in_code``: a Luhn-valid number in a fenced block (or after a technical key)
    needs a context word by default; with it off it is reported as anywhere."""
    text = "```\nuser_id = 4111111111111111\n```"
    assert found(patterns, text) == []
    strict = Analyzer(AnalyzerOptions(ner=False, quiet_in_code=False))
    assert ("CREDIT_CARD", "4111111111111111") in found(strict, text)
    assert ("CREDIT_CARD", "4111111111111111") in found(strict, "port=4111111111111111")


def test_the_strictness_switches_reach_the_detector_from_the_settings() -> None:
    from gateway.config.pii import PiiSettings
    from gateway.pii.detector import options_from

    loose = options_from(PiiSettings())
    assert loose.ner_windows and loose.quiet_in_code
    strict = options_from(PiiSettings(ner_windows=False, quiet_in_code=False))
    assert not strict.ner_windows and not strict.quiet_in_code


def test_a_strict_call_reads_as_both_switches_off_whatever_they_are(full: Analyzer) -> None:
    """``strict`` (the decision's ``strict_pii`` obligation) for one call: the lower-case name
    and the card number in code are found by the analyzer configured with both switches on,
    and the next call without it reads as configured again."""
    text = "```\nuser_id = 4111111111111111\n```\nplease forward the file to john smith."
    [loose] = full.analyze([text], None)
    assert {text[f.start : f.end] for f in loose} == set()
    [strict] = full.analyze([text], None, strict=True)
    assert {(f.entity_type, text[f.start : f.end]) for f in strict} >= {
        ("CREDIT_CARD", "4111111111111111"),
        ("PERSON", "john smith"),
    }
    assert full.analyze([text], None) == [loose]


async def test_the_detector_keeps_strict_and_configured_readings_apart() -> None:
    """The findings cache: a strict reading of a text is not served to a configured call, nor
    the other way round."""
    from gateway.config.pii import PiiSettings
    from gateway.pii.detector import FastDetector

    detector = FastDetector(PiiSettings(executor="inline", ner=False))
    text = "```\nuser_id = 4111111111111111\n```"
    assert await detector.analyze([text], None) == [[]]
    [strict] = await detector.analyze([text], None, strict=True)
    assert [f.entity_type for f in strict] == ["CREDIT_CARD"]
    assert await detector.analyze([text], None) == [[]]
    assert (await detector.analyze([text], None, strict=True))[0] == strict
    assert (detector.hits, detector.misses) == (2, 2)
