"""What the 2026-11-30 detection changes cost: base64 tokens decoded from 11 characters (was 16;
tokens without a capital letter passed over; ``binascii`` instead of the ``base64`` module) and
the selection in which a longer reading replaces the shorter ones it holds (docs/pii.md,
"Decoded views", "Selection").

    .venv/bin/python bench/pii/selection.py

``Analyzer.analyze`` (patterns and decoded views, no NER) on four texts, the current code
against the code before (its base64 view and its selection by score alone, both put back for
the "before" calls), back to back on each text in one process, the order swapped every round,
best of 7 rounds of 3 x 50 calls. Prints µs per call and the difference.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
import timeit
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gateway.pii.encoded as enc
import gateway.pii.engine as engine
from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.generic import Candidate
from gateway.pii.normalise import View

TEXTS = {
    "prose": "The quarterly report covers revenue, costs and a short note on hiring. " * 60,
    "code, identifiers of 12-15 characters": (
        "user_id_12345 = fetch(camelCaseName1, request_ctx_9, max_items_20)\n" * 60
    ),
    "tokens and digests": (
        "token eyJhbGciOiJIUzI1NiJ9 sha 9f86d081884c7d659a2feaa0c55ad015 id 3f2a9c1e-77ab\n" * 40
    ),
    "dense identifiers": (
        "card 4111 1111 1111 1111, TFN 123 456 782, mail a.b@example.com, ABN 51 824 753 556. " * 30
    ),
}

_B64_BEFORE = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{16,}={0,2}(?![A-Za-z0-9+/=_\-])")


def b64_views_before(text: str) -> list[View]:
    """The base64 view before: tokens of 16 characters up, ``base64`` module decoding."""
    views: list[View] = []
    for m in _B64_BEFORE.finditer(text):
        tok = m.group()
        if tok.isdigit() or tok.isalpha():
            continue
        padded = tok + "=" * (-len(tok) % 4)
        try:
            raw = (
                base64.urlsafe_b64decode(padded)
                if ("-" in tok or "_" in tok)
                else base64.b64decode(padded, validate=True)
            )
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if not enc._printable(decoded):
            continue
        n = len(decoded)
        views.append(View(decoded, (m.start(),) * n, (m.end(),) * n))
    return views


def select_before(cands: Iterable[Candidate], threshold: float = 0.0) -> list[Candidate]:
    """The selection before: highest score first, then longest, then earliest; nothing more."""
    ranked = sorted(
        (c for c in cands if c.score >= threshold),
        key=lambda c: (-c.score, -(c.end - c.start), c.start),
    )
    taken: list[Candidate] = []
    for c in ranked:
        if all(c.end <= t.start or c.start >= t.end for t in taken):
            taken.append(c)
    taken.sort(key=lambda c: c.start)
    return taken


def _use(b64_views: object, select: object) -> None:
    """Put a base64 view and a selection in place (the analyzer looks both up at each call)."""
    vars(enc)["_b64_views"] = b64_views
    vars(engine)["select"] = select


def main(rounds: int = 7) -> None:
    analyzer = Analyzer(AnalyzerOptions(ner=False))
    now = (enc._b64_views, vars(engine)["select"])
    codes = {"before": (b64_views_before, select_before), "now": now}
    best: dict[tuple[str, str], float] = {}
    for r in range(rounds):
        for name, text in TEXTS.items():
            # the two codes back to back on each text, the order swapped every round
            for label in ("before", "now") if r % 2 == 0 else ("now", "before"):
                _use(*codes[label])

                def call(t: str = text) -> None:
                    analyzer.analyze([t], None)

                us = min(timeit.repeat(call, number=50, repeat=3)) / 50 * 1e6
                best[(name, label)] = min(us, best.get((name, label), us))
    _use(*now)
    print("| text | before µs | now µs | difference |")
    print("|---|---:|---:|---:|")
    for name in TEXTS:
        was, is_ = best[(name, "before")], best[(name, "now")]
        print(f"| {name} | {was:.0f} | {is_:.0f} | {100 * (is_ / was - 1):+.1f} % |")


if __name__ == "__main__":
    main()
