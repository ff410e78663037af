"""The cost of screening a streamed answer for new personal data (``pii.output_new_pii:
redact``) against relaying it with the count at the end (``report``), same text, alternating.

    .venv/bin/python bench/pii/stream_screen.py [--chars 4000] [--delta 4] [--rounds 5]

A ~4,000-character answer (business prose holding one e-mail address and one phone number the
prompt did not) streamed in deltas of ``--delta`` characters through the gateway's streaming
restorer (``gateway.pii.restore.Streamer``, the pattern recognizers as the guard builds them,
no placeholders). Prints CPU µs per delta for both modes and their ratio, and how many
characters the screened stream holds back (its added latency, in text).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.pii.engine import Analyzer, AnalyzerOptions
from gateway.pii.restore import HOLD, PlaceholderRestorer
from gateway.pii.scanner import select

SENTENCES = [
    "Thanks for the update on the quarterly figures. ",
    "The team will review the invoice before Friday and reply by email. ",
    "Our supplier confirmed the shipment left the warehouse on Monday. ",
    "Please write to claims.officer@example.org if the total looks wrong. ",
    "For urgent questions call the desk on 0412 345 678 during office hours. ",
    "We expect the next batch in two weeks, weather permitting. ",
]


def run(text: str, delta: int, redact: bool, scan: Analyzer) -> tuple[float, int, str]:
    r = PlaceholderRestorer({}, [], lambda t: select(scan.patterns(t, None)), redact_new=redact)
    sr = r.stream()
    out = []
    t0 = time.process_time()
    for i in range(0, len(text), delta):
        out.append(sr.feed(text[i : i + delta]))
    out.append(sr.flush())
    return time.process_time() - t0, sum(r.new_pii.values()), "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chars", type=int, default=4000)
    ap.add_argument("--delta", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    text = ""
    while len(text) < a.chars:
        text += "".join(SENTENCES)
    scan = Analyzer.__new__(Analyzer)  # patterns only, as the guard's output scan
    Analyzer.__init__(scan, AnalyzerOptions(ner=False))
    deltas = -(-len(text) // a.delta)
    best = {"report": float("inf"), "redact": float("inf")}
    for _ in range(a.rounds):
        for mode in ("report", "redact"):
            secs, found, out = run(text, a.delta, mode == "redact", scan)
            best[mode] = min(best[mode], secs)
            assert found > 0 and (("@example.org" in out) is (mode == "report"))
    print(f"{len(text)} characters in {deltas} deltas of {a.delta}; best of {a.rounds}")
    print("| mode | CPU µs per delta | CPU ms per answer |")
    print("|---|---:|---:|")
    for mode, secs in best.items():
        print(f"| {mode} | {secs / deltas * 1e6:.1f} | {secs * 1e3:.1f} |")
    print(f"ratio redact / report: {best['redact'] / best['report']:.1f}; held back: {HOLD} chars")


if __name__ == "__main__":
    main()
