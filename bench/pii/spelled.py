"""What the spelled-out view costs the pattern pass (docs/pii.md, "Decoded views").

    .venv/bin/python bench/pii/spelled.py

``Analyzer.patterns`` on three 2.5-4.3 KB texts without a spelled-out value (prose, indented
code, markdown made of horizontal rules and tables), with and without the view, alternating
in one process, best of 3 rounds of 3 x 100 calls. Prints µs per call and the difference.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gateway.pii.encoded as enc
from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.normalise import View

TEXTS = {
    "prose": "The quarterly report covers revenue, costs and a short note on hiring. " * 60,
    "code": "def f(a, b):\n            return a + b  # x y z\n" * 100,
    "markdown rules": "Intro text\n\n----------------\n\n| a | b |\n|---|---|\n" * 50,
}


def main() -> None:
    analyzer = Analyzer(AnalyzerOptions(ner=False))
    with_view = enc._spelled_views

    def without_view(_text: str) -> list[View]:
        return []

    best: dict[tuple[str, bool], float] = {}
    for _ in range(3):
        for on in (False, True):
            if on:
                enc._spelled_views = with_view
            else:
                enc._spelled_views = without_view  # type: ignore[assignment]
            for name, text in TEXTS.items():

                def call(t: str = text) -> None:
                    analyzer.patterns(t, None)

                runs = timeit.repeat(call, number=100, repeat=3)
                us = min(runs) / 100 * 1e6
                best[(name, on)] = min(us, best.get((name, on), us))
    enc._spelled_views = with_view
    print("| text | without µs | with µs | difference |")
    print("|---|---:|---:|---:|")
    for name in TEXTS:
        off, on_ = best[(name, False)], best[(name, True)]
        print(f"| {name} | {off:.0f} | {on_:.0f} | {100 * (on_ / off - 1):+.1f} % |")


if __name__ == "__main__":
    main()
