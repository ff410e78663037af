"""Names by lexicon (census first names and surnames) and by title cues in other languages."""

from __future__ import annotations

import pytest

from gateway.pii.engine import Analyzer
from gateway.pii.names import lexicon, lexicon_names
from gateway.pii.ner import cue_names
from tests.unit.pii.conftest import found


def _spans(text: str) -> list[str]:
    return [text[f.start : f.end] for f in lexicon_names(text)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please send the contract to Collin Barrera before Friday.", "Collin Barrera"),
        ("Heather Evans called yesterday about the invoice.", "Heather Evans"),
        ("Meeting notes: Anastasia Fiol Montenegro will own it.", "Anastasia Fiol Montenegro"),
        ("Ask Sophia Kuilenburg-Spreeuw first.", "Sophia Kuilenburg-Spreeuw"),
        ("Please loop in Matthieu Laurent.", "Matthieu Laurent"),  # unknown first, census surname
        ("Forward it to Grace Kelly today.", "Grace Kelly"),  # ambiguous first name + surname
        ("Ask Sophia Evans to sign.", "Sophia Evans"),  # the imperative verb is not in the span
    ],
)
def test_lexicon_finds_first_name_runs(text: str, name: str) -> None:
    assert _spans(text) == [name]


@pytest.mark.parametrize(
    "text",
    [
        "Will Kubernetes scale the pods?",  # ambiguous first name, technical word
        "Mark Complete when the task is done.",  # ambiguous first name, no surname
        "We met at the Golden Gate Bridge in Santa Clara.",
        "Visual Studio Code crashed again.",
        "The Rose Bowl and Main Street are closed.",
        "Deploy Aurora to us-east-1 behind CloudFront.",
        "Happy New Year from the team.",
        "Open Microsoft Word and Google Chrome.",
        "The Tesla Model was delivered.",
        "The quarterly report is due next week.",
    ],
)
def test_lexicon_ignores_places_products_and_words(text: str) -> None:
    assert _spans(text) == []


def test_lexicon_reads_the_census_lists() -> None:
    lex = lexicon()
    assert len(lex.first) > 5000 and len(lex.last) > 80000
    assert "MARY" in lex.first and "SMITH" in lex.last


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Frau Magarete Schmidtke called.", "Magarete Schmidtke"),
        ("Sig.ra Irma Paolucci ha scritto.", "Irma Paolucci"),
        ("Sig. Pierangelo Morpurgo called.", "Pierangelo Morpurgo"),
        ("Mme Hélène Dubois a appelé.", "Hélène Dubois"),
    ],
)
def test_titles_in_other_languages_cue_a_name(text: str, name: str) -> None:
    assert [text[f.start : f.end] for f in cue_names(text)] == [name]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # a name does not run across a line break into the next line's capitals
        ("Regards,\nJohn Smith\nHead of Sales", "John Smith"),
        ("Regards, John Smith\nSydney Office", "John Smith"),
        # nor into a trailing common or calendar word
        ("Dear John Smith Thanks for the note.", "John Smith"),
        ("Dr Jane Doe Monday at ten.", "Jane Doe"),
        # two particles inside a name
        ("My name is Anna Maria van der Berg.", "Anna Maria van der Berg"),
        ("Dear Maria de la Cruz, welcome.", "Maria de la Cruz"),
    ],
)
def test_a_cued_name_ends_where_the_name_ends(text: str, name: str) -> None:
    # Before, the span took the capitals that followed ("John Smith\nHead", "Jane Doe Monday")
    # and the pseudonymiser hid them from the model with the name.
    assert [text[f.start : f.end] for f in cue_names(text)] == [name]


def test_lexicon_name_wins_over_a_place_label(full: Analyzer) -> None:
    text = "Please send the contract to Collin Barrera before Friday."
    got = found(full, text)
    assert ("PERSON", "Collin Barrera") in got
    assert all(t != "LOCATION" for t, _ in got)


def test_every_cue_and_title_opens_a_name() -> None:
    """Each cue and title, as written and upper-cased, still introduces a name: the look-ahead
    that lets the regex skip positions admits the first letter of every one of them."""
    import re

    from gateway.pii.ner import _CUES, _TITLES

    for alternative in f"{_CUES}|{_TITLES}".split("|"):
        cue = re.sub(r"\(\?:([^)]*)\)\?", r"\1", alternative)  # optional suffix, spelled out
        cue = re.sub(r"\\(.)", r"\1", cue.replace("?", ""))
        for spelled in (cue, cue.upper()):
            text = f"Note: {spelled} Anna Schmidt will join."
            assert [text[f.start : f.end] for f in cue_names(text)] == ["Anna Schmidt"], spelled


@pytest.mark.parametrize("place", ["Hong Kong", "Sierra Leone", "Santa Cruz de Tenerife"])
def test_a_country_or_region_that_opens_with_a_first_name_is_a_place(place: str) -> None:
    # "Hong", "Sierra" and "Cruz" are census first names: the lexicon took these as people
    text = f"The shipment to {place} was delayed."
    got = [(f.entity_type, text[f.start : f.end]) for f in lexicon_names(text)]
    assert ("PERSON", place) not in got and all(t != "PERSON" for t, _ in got)
    assert any(t == "LOCATION" and place.endswith(v) for t, v in got)


def test_a_lexicon_name_inside_a_longer_place_the_model_found_is_the_place(
    full: Analyzer,
) -> None:
    text = "I moved to Santa Cruz de Tenerife last year."
    got = found(full, text)
    assert ("LOCATION", "Santa Cruz de Tenerife") in got
    assert all(t != "PERSON" for t, _ in got)
