from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from gateway.pii.engine import Analyzer, AnalyzerOptions


@pytest.fixture(scope="session")
def patterns() -> Analyzer:
    """The pattern recognizers alone (no spaCy model): fast."""
    return Analyzer(AnalyzerOptions(ner=False))


@pytest.fixture(scope="session")
def full() -> Analyzer:
    """Patterns plus the reduced spaCy NER pipeline (loads the model once per session)."""
    return Analyzer(AnalyzerOptions(ner=True))


def found(analyzer: Analyzer, text: str) -> list[tuple[str, str]]:
    [fs] = analyzer.analyze([text], None)
    return [(f.entity_type, text[f.start : f.end]) for f in fs]
