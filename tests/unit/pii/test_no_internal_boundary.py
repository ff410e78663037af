"""Reliability P-4's boundary case: the detector has no internal chunk a value can straddle.
Identifier patterns scan each text whole, so a card number is found wherever it sits in a long
text (around every power of two, where a chunked scanner would cut); NER runs on windows around
capitalised words, which always hold a whole name, so a name is found at every distance from
the text's start and from other capitalised words."""

from __future__ import annotations

import pytest

from gateway.pii.engine import Analyzer
from tests.unit.pii.conftest import found

CARD = "4111 1111 1111 1111"
FILLER = "the quarterly report covers revenue costs and a short note on hiring " * 1600  # 110 KB


@pytest.mark.parametrize("offset", [0, 1, 4093, 4096, 8190, 16384, 65531, 65536, 100_000])
def test_a_card_is_found_wherever_it_sits_in_a_long_text(patterns: Analyzer, offset: int) -> None:
    text = FILLER[:offset] + f" card {CARD} " + FILLER[offset:]
    (findings,) = patterns.analyze([text], None)
    spans = [(f.entity_type, text[f.start : f.end]) for f in findings]
    assert spans == [("CREDIT_CARD", CARD)], spans


@pytest.mark.parametrize("before", range(0, 12))
def test_a_name_is_found_at_every_distance_from_a_window_edge(full: Analyzer, before: int) -> None:
    # lower-case words before it (no window there), another capitalised word after it at a
    # distance that moves a window's edge across the name
    text = " ".join(["and"] * before) + " please ask Harold Finch about it" + " ok" * before
    text += " Monday"
    assert ("PERSON", "Harold Finch") in found(full, text.strip())
