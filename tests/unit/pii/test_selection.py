"""How overlapping readings of one text are resolved (``gateway.pii.scanner.select``) and what
the guard does with a value read two ways: never masked only in part, and the stricter action."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.pii.contract import Finding
from gateway.pii.engine import Analyzer
from gateway.pii.generic import Candidate
from gateway.pii.guard import Guard
from gateway.pii.scanner import select
from gateway.policy.contract import PiiAction
from tests.unit.pii.conftest import found

CARD = "4111 1111 1111 1111"


def test_a_shorter_reading_inside_a_value_gives_way_to_the_whole_value(patterns: Analyzer) -> None:
    # "my number" is a Japanese My Number's context; its first twelve digits pass that checksum
    text = f"My number is {CARD} thanks"
    assert found(patterns, text) == [("CREDIT_CARD", CARD)]
    (finding,) = patterns.analyze([text], None)[0]
    assert finding.also == ("JP_MY_NUMBER",)


def test_the_longer_candidate_takes_the_place_whatever_the_scores() -> None:
    inner, outer = Candidate(0, 14, "JP_MY_NUMBER", 0.9), Candidate(0, 19, "CREDIT_CARD", 0.6)
    assert select([inner, outer]) == [outer._replace(also=("JP_MY_NUMBER",))]
    # under the threshold a candidate takes no one's place
    assert select([inner, outer], threshold=0.7) == [inner]


def test_a_holder_that_also_overlaps_another_taken_value_does_not_displace() -> None:
    """X holds Y but also crosses Z, which outranks it: Y stays (X is not taken), so nothing
    that was covered before is left in clear."""
    z, y, x = Candidate(15, 30, "A", 0.9), Candidate(0, 10, "B", 0.8), Candidate(0, 20, "C", 0.5)
    assert select([z, y, x]) == [y, z]


def test_readings_of_the_same_length_are_ranked_as_before() -> None:
    a, b = Candidate(0, 9, "AU_TFN", 0.9), Candidate(0, 9, "US_SSN", 0.6)
    assert select([b, a]) == [a]


class _Fixed:
    """A detector that returns given findings (one text)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)

    async def analyze(
        self, texts: Sequence[str], entities: object, strict: bool = False
    ) -> list[list[Finding]]:
        return [list(self.findings) for _ in texts]


async def test_a_value_read_two_ways_gets_the_stricter_action_under_that_type() -> None:
    text = f"My number is {CARD} thanks"
    start = text.index(CARD)
    read = Finding("CREDIT_CARD", start, start + len(CARD), 0.6, also=("JP_MY_NUMBER",))
    g = Guard(_Fixed([read]), b"s" * 32)
    body = {"messages": [{"role": "user", "content": text}]}
    inspection = await g.inspect("chat", body, None)
    assert inspection.counts == {"CREDIT_CARD": 1, "JP_MY_NUMBER": 1}  # the policy sees both

    def actions(card: PiiAction, my_number: PiiAction) -> object:
        return lambda e: {"CREDIT_CARD": card, "JP_MY_NUMBER": my_number}[e]

    # cards allowed, My Numbers redacted: the value is redacted, as a My Number
    out = g.apply(inspection, actions(PiiAction.ALLOW, PiiAction.REDACT), "t")  # type: ignore[arg-type]
    sent = json.dumps(out.body)
    assert "1111" not in sent and "JP_MY_NUMBER" in sent
    # the other way round: redacted as a card
    out = g.apply(inspection, actions(PiiAction.REDACT, PiiAction.ALLOW), "t")  # type: ignore[arg-type]
    sent = json.dumps(out.body)
    assert "1111" not in sent and "CREDIT_CARD" in sent
    # both allowed: it passes whole
    out = g.apply(inspection, actions(PiiAction.ALLOW, PiiAction.ALLOW), "t")  # type: ignore[arg-type]
    assert CARD in json.dumps(out.body)
