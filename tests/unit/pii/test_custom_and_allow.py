"""The organisation's own identifiers (pii.custom) and the phrases never personal data here
(pii.allow), through the analyzer the detector runs and the settings that feed it."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from gateway.config.pii import PiiSettings
from gateway.pii.detector import options_from
from gateway.pii.engine import Analyzer


def _analyzer(**pii: object) -> Analyzer:
    settings = PiiSettings.model_validate({"ner": False, **pii})
    return Analyzer(options_from(settings))


def _found(analyzer: Analyzer, text: str) -> list[tuple[str, str]]:
    (findings,) = analyzer.analyze([text], None)
    return [(f.entity_type, text[f.start : f.end]) for f in findings]


CUSTOM = {"custom": [{"entity": "EMPLOYEE_ID", "pattern": r"\bEMP-\d{6}\b"}]}


def test_an_identifier_of_the_organisations_own_is_found_as_its_own_type() -> None:
    a = _analyzer(**CUSTOM)
    text = "Please update the leave balance of EMP-204518 and mail liz@example.org."
    assert _found(a, text) == [("EMPLOYEE_ID", "EMP-204518"), ("EMAIL_ADDRESS", "liz@example.org")]
    # not by the built-in recognizers alone, and not where the pattern does not match
    assert ("EMPLOYEE_ID", "EMP-204518") not in _found(_analyzer(), text)
    assert _found(a, "EMP-12 and XEMP-123456") == []


def test_it_is_found_in_an_encoded_value_too_and_only_when_asked_for() -> None:
    a = _analyzer(**CUSTOM)
    encoded = base64.b64encode(b"employee EMP-204518 on leave").decode()
    assert "EMPLOYEE_ID" in {e for e, _ in _found(a, f"payload {encoded}")}
    (only_mail,) = a.analyze(["EMP-204518 liz@example.org"], frozenset({"EMAIL_ADDRESS"}))
    assert [f.entity_type for f in only_mail] == ["EMAIL_ADDRESS"]


def test_an_allowed_phrase_is_dropped_whole_and_only_whole() -> None:
    a = _analyzer(allow=["1300 655 506", "HELP@agency.gov.au"])
    text = "Call our hotline on 1300 655 506 or mail help@agency.gov.au; Kim is on 0412 345 678."
    assert _found(a, text) == [("PHONE_NUMBER", "0412 345 678")]
    # the same digits inside a longer finding are not a phrase of the list
    assert _found(a, "mail help@agency.gov.au.example.org") != []


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({"entity": "employee_id", "pattern": "E\\d+"}, "capital letters"),
        ({"entity": "EMPLOYEE_ID", "pattern": "E(\\d+"}, "not a regular expression"),
        ({"entity": "EMPLOYEE_ID", "pattern": "\\d*"}, "empty string"),
    ],
)
def test_a_bad_recognizer_is_refused_naming_what_is_wrong(
    custom: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        PiiSettings.model_validate({"custom": [custom]})
    with pytest.raises(ValidationError, match="1-200 characters"):
        PiiSettings.model_validate({"allow": ["  "]})
