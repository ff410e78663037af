"""Our recognizers as one Presidio ``EntityRecognizer``, for use inside a Presidio engine.

The gateway does not need this (it calls :class:`gateway.pii.engine.Analyzer` directly, which is
where the speed comes from), but it lets an existing Presidio deployment gain every Part 2
identifier, the normaliser, decoded views and the technical-text rules by adding one recognizer
to its registry::

    from presidio_analyzer import AnalyzerEngine
    engine = AnalyzerEngine(...)
    engine.registry.add_recognizer(CombinedRecognizer())

Findings are ``RecognizerResult`` objects with offsets into the text Presidio was given.
"""

from __future__ import annotations

from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.scanner import PATTERN_ENTITIES, select

__all__ = ["CombinedRecognizer"]


class CombinedRecognizer(EntityRecognizer):
    """Every pattern recognizer of ``gateway.pii`` in one pass, for Presidio's registry."""

    def __init__(self, options: AnalyzerOptions | None = None, language: str = "en") -> None:
        self._analyzer = Analyzer(options or AnalyzerOptions(ner=False))
        super().__init__(
            supported_entities=sorted(PATTERN_ENTITIES),
            name="PortcullisCombinedRecognizer",
            supported_language=language,
        )

    def load(self) -> None:
        return None

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        wanted = frozenset(entities) if entities else None
        thr = self._analyzer.options.score_threshold
        return [
            RecognizerResult(c.entity, c.start, c.end, c.score)
            for c in select(self._analyzer.patterns(text, wanted), thr)
        ]
