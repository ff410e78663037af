"""``pii.ner_windows``: the detector with the NER reading windows around capitalised tokens (the
default) against the same detector reading every text whole, side by side in one run.

    .venv/bin/python -m bench.pii.windows [--repeats 9] [--words 50 300 2000]

Same texts (business prose and Faker lorem with planted values, as ``bench.pii.speed`` makes
them), calls alternated, medians per size. Prints the ratio (whole / windows) and both recalls
of the planted values; and, on lower-cased copies of the texts (names typed in lower case), the
planted names and places each finds.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `portcullis serve` runs the detector

from faker import Faker

from bench.pii.speed import Planted, make_text, recall
from gateway.pii.engine import Analyzer, AnalyzerOptions


def _spans(analyzer: Analyzer, text: str) -> list[tuple[int, int, str]]:
    [fs] = analyzer.analyze([text], None)
    return [(f.start, f.end, f.entity_type) for f in fs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--words", type=int, nargs="+", default=[50, 300, 2000])
    ap.add_argument("--texts", type=int, default=6, help="texts per size and filler")
    args = ap.parse_args()
    rng, fake = random.Random(7), Faker()
    Faker.seed(7)
    windows = Analyzer(AnalyzerOptions())
    whole = Analyzer(AnalyzerOptions(ner_windows=False))
    print("| filler | words | windows ms (median) | whole ms (median) | whole / windows |")
    print("|---|---:|---:|---:|---:|")
    corpus: list[tuple[str, Planted]] = []
    for filler in ("business", "lorem"):
        for words in args.words:
            texts = [make_text(words, rng, fake, filler) for _ in range(args.texts)]
            corpus += texts
            a: list[float] = []
            b: list[float] = []
            for text, _ in texts:
                _spans(windows, text), _spans(whole, text)  # warm: the token cache, the lexicon
                for _ in range(args.repeats):
                    for analyzer, out in ((windows, a), (whole, b)):
                        t0 = time.perf_counter()
                        _spans(analyzer, text)
                        out.append((time.perf_counter() - t0) * 1000)
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"| {filler} | {words} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f}x |")
    print()
    print(
        f"recall of planted values: windows {recall(lambda t: _spans(windows, t), corpus):.3f}, "
        f"whole {recall(lambda t: _spans(whole, t), corpus):.3f}"
    )
    ner_types = {"PERSON", "LOCATION"}
    lowered = [(t.lower(), [(v.lower(), e) for v, e in p if e in ner_types]) for t, p in corpus]
    print(
        "lower-cased texts, planted names and places found: "
        f"windows {recall(lambda t: _spans(windows, t), lowered):.3f}, "
        f"whole {recall(lambda t: _spans(whole, t), lowered):.3f}"
    )


if __name__ == "__main__":
    main()
