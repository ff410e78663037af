"""The synchronous analysis of a batch of texts: normalise, decode, scan, NER, select.

This is what runs off the event loop (in a thread or a worker process, see
:mod:`gateway.pii.detector`). It returns offsets into the original texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.pii.contract import Finding
from gateway.pii.encoded import decoded_views
from gateway.pii.fused_tok2vec import CACHE_TOKENS
from gateway.pii.generic import DEFAULT_PHONE_REGIONS, Candidate
from gateway.pii.names import lexicon, lexicon_names
from gateway.pii.ner import NER_ENTITIES, NerEngine, cue_names
from gateway.pii.normalise import View, normalise
from gateway.pii.scanner import scan_patterns, select

__all__ = ["Analyzer", "AnalyzerOptions", "needs_ner"]

# Code (fenced blocks, and inline `spans` within a line) is not prose: a capitalised identifier
# there (`TaskGet`, `Array`) is not a name, whatever the name model reads into it.
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)|`[^`\n]{1,200}`", re.DOTALL)


@dataclass(frozen=True, slots=True)
class AnalyzerOptions:
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    ner: bool = True
    encoded_views: bool = True
    score_threshold: float = 0.4
    name_lexicon: bool = True  # census first-name/surname rule (gateway.pii.names)
    token_cache: int = CACHE_TOKENS  # distinct tokens the NER keeps embedded (0: none)
    # NER over windows around capitalised tokens (the speed lever); false: over every text whole
    ner_windows: bool = True
    # weak identifiers and bare phone numbers in code or after a technical key need a context
    # word (gateway.pii.scanner); false: they are reported there as anywhere
    quiet_in_code: bool = True
    # the organisation's own identifiers: (entity type, regular expression, score)
    custom: tuple[tuple[str, str, float], ...] = ()
    # phrases never personal data here (case-folded, spaces collapsed): a finding of exactly
    # one of them is dropped
    allow: frozenset[str] = frozenset()


def needs_ner(entities: frozenset[str] | None) -> bool:
    return entities is None or not entities.isdisjoint(NER_ENTITIES)


def _map(outer: View, inner: View, c: Candidate) -> tuple[int, int]:
    """Span of ``c`` (in ``inner.text``) in the original text, through ``inner`` then ``outer``."""
    s, e = inner.to_original(c.start, c.end)
    return outer.to_original(s, e)


class Analyzer:
    def __init__(self, options: AnalyzerOptions, ner: NerEngine | None = None) -> None:
        self.options = options
        self._ner = ner
        if options.ner and ner is None:
            self._ner = NerEngine(token_cache=options.token_cache)
        if options.ner and options.name_lexicon:
            lexicon()  # read the name lists now, not on the first request
        self._custom = [(e, re.compile(p), score) for e, p, score in options.custom]

    def _scan(
        self, text: str, entities: frozenset[str] | None, strict: bool = False
    ) -> list[Candidate]:
        """The built-in pattern recognizers and the organisation's own over one view's text."""
        quiet = self.options.quiet_in_code and not strict
        out = scan_patterns(text, entities, self.options.phone_regions, quiet_in_code=quiet)
        for entity, rx, score in self._custom:
            if entities is None or entity in entities:
                out.extend(Candidate(m.start(), m.end(), entity, score) for m in rx.finditer(text))
        return out

    def allowed(self, text: str, start: int, end: int) -> bool:
        """Whether the span is one of the phrases never personal data here."""
        allow = self.options.allow
        return bool(allow) and " ".join(text[start:end].casefold().split()) in allow

    def patterns(
        self, text: str, entities: frozenset[str] | None, strict: bool = False
    ) -> list[Candidate]:
        """Pattern findings with offsets into ``text`` (normalised and decoded views too)."""
        view = normalise(text)
        out = [
            Candidate(*view.to_original(c.start, c.end), c.entity, c.score)
            for c in self._scan(view.text, entities, strict)
        ]
        if self.options.encoded_views:
            for dv in decoded_views(view.text):
                inner = normalise(dv.text)
                for c in self._scan(inner.text, entities, strict):
                    s, e = _map(dv, inner, c)
                    out.append(Candidate(*view.to_original(s, e), c.entity, c.score))
        return out

    def _lone_word(self, f: Finding, text: str) -> bool:
        """A name the model found that is one word and neither a census first name nor a
        surname: in instructions and documentation the model takes capitalised verbs and nouns
        for names ("invoke Workflow", "Merge metadata keys", "Caveat:"); one word that is a
        person's name is almost always one the census lists know (with the lexicon on)."""
        if f.entity_type != "PERSON" or not self.options.name_lexicon:
            return False
        word = text[f.start : f.end]
        if any(c.isspace() for c in word):
            return False
        parts = [p.upper() for p in word.replace("\u2019", "'").split("-")]
        lex = lexicon()
        return not any(p in lex.first or p in lex.last for p in parts)

    def analyze(
        self, texts: Sequence[str], entities: frozenset[str] | None, strict: bool = False
    ) -> list[list[Finding]]:
        """Findings per text. ``strict`` (a decision's ``strict_pii`` obligation): this call
        as with ``pii.ner_windows: false`` and ``pii.quiet_in_code: false``, whatever they are."""
        cands: list[list[Candidate]] = [self.patterns(t, entities, strict) for t in texts]
        if self._ner is not None and self.options.ner and needs_ner(entities):
            views = [normalise(t) for t in texts]
            idx = [i for i, v in enumerate(views) if any(c.isalpha() for c in v.text)]
            windows = self.options.ner_windows and not strict
            found = self._ner.find([views[i].text for i in idx], entities, windows=windows)
            for i, fs in zip(idx, found, strict=True):
                code = [m.span() for m in _CODE_BLOCK.finditer(views[i].text)]
                cued = []
                if entities is None or "PERSON" in entities:
                    cued = cue_names(views[i].text)
                    if self.options.name_lexicon:
                        # a lexicon name inside a longer place the model found is part of the
                        # place ("Cruz de Tenerife" in "Santa Cruz de Tenerife")
                        wider = [(f.start, f.end) for f in fs if f.entity_type == "LOCATION"]
                        cued += [
                            n
                            for n in lexicon_names(views[i].text)
                            if not any(
                                s <= n.start and n.end <= e and e - s > n.end - n.start
                                for s, e in wider
                            )
                        ]
                text = views[i].text
                for f, by_model in [*((f, True) for f in fs), *((f, False) for f in cued)]:
                    if any(s <= f.start < e for s, e in code):
                        continue
                    if "\n" in text[f.start : f.end]:
                        # a name does not run over a line break: the model joined a heading or
                        # a list item to the next line ("Environment\nYou", "Git\n- Interactive")
                        continue
                    if by_model and self._lone_word(f, text):
                        continue
                    s, e = views[i].to_original(f.start, f.end)
                    cands[i].append(Candidate(s, e, f.entity_type, f.score))
        thr = self.options.score_threshold
        return [
            [
                Finding(c.entity, c.start, c.end, c.score, c.also)
                for c in select(cs, thr)
                if not self.allowed(text, c.start, c.end)
            ]
            for text, cs in zip(texts, cands, strict=True)
        ]
