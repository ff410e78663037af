"""Security classification markings read from a request's texts (gateway.markings)."""

from __future__ import annotations

import json

import pytest

from gateway.markings import level_of, marking_level

MARKED = [
    ("PROTECTED\nBudget figures for the minister", "protected"),
    ("  OFFICIAL: Sensitive  \nStaff list", "sensitive"),
    ("OFFICIAL:Sensitive\n...", "sensitive"),
    ("OFFICIAL-SENSITIVE\nUK note", "sensitive"),
    ("SECRET//NOFORN\nCable text", "secret"),
    ("TOP SECRET//SI//REL TO AUS, USA\nsummary", "top_secret"),
    ("CUI\nControlled unclassified", "sensitive"),
    ("CONFIDENTIAL - do not distribute\nQ3 plan", "protected"),
    ("Subject: Budget update [SEC=PROTECTED]", "protected"),
    ("Subject: Roster [SEC=OFFICIAL:Sensitive, ACCESS=Personal-Privacy]", "sensitive"),
    (
        "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=TOP-SECRET, ORIGIN=a@b.gov.au",
        "top_secret",
    ),
    ("Classification: SECRET\nBody", "secret"),
    ("Security classification: PROTECTED", "protected"),
    ("OFFICIAL\nRoutine note", "official"),
    ("[SEC=UNOFFICIAL]", "official"),
    ("OFFICIAL\nbody\nPROTECTED", "protected"),  # the highest marking counts
]

UNMARKED = [
    "The secret to good bread is time.",
    "THIS IS NOT A SECRET, JUST SHOUTING",
    "protected void run() {}",
    "CONFIDENTIAL = 3",  # code, not a banner
    "class SECRETS:\n    pass",
    "Our official position is unchanged.",
    "Top secret recipe!",
    "The PROTECTED flag is set in the header.",
    "classification: spam",
    "CUIDADO con el perro",
]


@pytest.mark.parametrize(("text", "level"), MARKED)
def test_markings_are_read_at_their_level(text: str, level: str) -> None:
    assert level_of(text) == level
    body = {"messages": [{"role": "user", "content": f"Summarise:\n{text}"}]}
    assert marking_level("chat", body, json.dumps(body).encode()) == level


@pytest.mark.parametrize("text", UNMARKED)
def test_words_in_prose_code_or_lower_case_are_not_markings(text: str) -> None:
    assert level_of(text) is None
    body = {"messages": [{"role": "user", "content": text}]}
    assert marking_level("chat", body, json.dumps(body).encode()) is None


def test_every_text_of_the_request_is_read_and_the_highest_wins() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "OFFICIAL\nbe brief"},
            {"role": "user", "content": [{"type": "text", "text": "see the attached"}]},
            {"role": "tool", "tool_call_id": "c1", "content": "SECRET\nsat imagery"},
        ]
    }
    assert marking_level("chat", body, json.dumps(body).encode()) == "secret"
    completion = {"prompt": ["plain", "Classification: PROTECTED\ntext"]}
    assert marking_level("completions", completion, json.dumps(completion).encode()) == "protected"
