"""PII protection: detection that resists evasion, actions, reversible pseudonyms, restoring.

Entry point for the gateway: :func:`build_guard`. See ``docs/pii.md``.
"""

from __future__ import annotations

import dataclasses

from gateway.config.pii import PiiSettings
from gateway.pii.contract import PiiGuard

__all__ = ["build_guard"]


def build_guard(settings: PiiSettings, secret: bytes, index_subjects: bool = False) -> PiiGuard:
    """The production guard: :class:`~gateway.pii.detector.FastDetector` (recognizers, spaCy
    NER, cache, executor, deadline) behind :class:`~gateway.pii.guard.Guard`.

    Heavy imports happen here, not at package import. The spaCy model loads on first use;
    ``await guard.ready()`` at start-up loads it before the first request.
    """
    from gateway.pii.detector import FastDetector, options_from
    from gateway.pii.engine import Analyzer
    from gateway.pii.guard import Guard
    from gateway.pii.scanner import select

    options = options_from(settings)
    patterns_only = Analyzer(dataclasses.replace(options, ner=False, encoded_views=False))
    threshold = options.score_threshold

    def output_scan(text: str) -> list:  # type: ignore[type-arg]
        found = select(patterns_only.patterns(text, None), threshold)
        return [c for c in found if not patterns_only.allowed(text, c.start, c.end)]

    return Guard(
        FastDetector(settings),
        secret,
        max_chars=settings.max_chars,
        output_scan=output_scan,
        redact_new_output=settings.output_new_pii == "redact",
        index_subjects=index_subjects,
    )
