"""The reduced NER pipeline (``ner`` alone, numpy gemm) tags exactly as the stock tok2vec + ner."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.pii.engine import Analyzer
from gateway.pii.ner import MODEL_NAME

TEXTS = [
    "Please send the contract to Sean Coleman before Friday. Please update my records:",
    "Nicholas Bean called yesterday about the delivery to Boston and the office in Paris.",
    "Frau Magarete Schmidtke flies from Berlin to the Golden Gate Bridge on Monday.",
    "Harish Sehgal and Fleur Lemmens met Dr. Anna Kowalski at Heathrow Airport in London.",
    "The quarterly report is due next week and the numbers are still being checked.",
]


@pytest.fixture(scope="module")
def stock() -> Any:
    import spacy

    return spacy.load(MODEL_NAME, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer"])


def test_loads_ner_alone_with_numpy_gemm(full: Analyzer) -> None:
    nlp = full._ner._nlp  # type: ignore[union-attr]
    assert nlp.pipe_names == ["ner"]
    assert all(not node.ops.use_blis for node in nlp.get_pipe("ner").model.walk())


def test_entities_match_the_stock_tok2vec_and_ner_pipeline(full: Analyzer, stock: Any) -> None:
    nlp = full._ner._nlp  # type: ignore[union-attr]
    ours = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(TEXTS)]
    theirs = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in stock.pipe(TEXTS)]
    assert ours == theirs
    assert any(ours)  # the comparison saw entities, not only empty documents
