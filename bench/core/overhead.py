"""What the gateway adds in front of a backend that takes 50 ms, under 50 clients (reliability
reference L-1), with and without the PII scan, against the bare forwarder and LiteLLM.

    .venv/bin/python bench/core/overhead.py [--duration 30] [--conc 50] [--delay 0.05]
        [--skip-litellm] [--targets a,b,...] [--pg URL] [--record FILE | --no-record]

A backend that answers every non-streamed chat completion after ``--delay`` seconds
(``slow_upstream.py``); wrk (closed loop, ``--conc`` connections) posts a ~1 KB prompt that
holds personal data (names, an e-mail address, a phone number, an Australian TFN) for
``--duration`` seconds, each request's prompt ending with its own number (no two texts alike:
a cache of whole texts never answers), to: the backend itself (the baseline), the bare
forwarder, Portcullis on its core path without and with the PII guard (the default detector:
checksummed identifiers, patterns and names; the embedded policy pseudonymises them for this
external backend), with the guard finding identifiers, contacts and numbers only
(``pii.ner: false``: the reference's "pattern redaction"; the names stay as written), and
LiteLLM's proxy (no guardrail). One worker per target pinned to core 1; wrk and the backend on
core 0. ``--jitter`` lets the backend's delay vary (0.5: 25-75 ms for 50 ms), as a model's
answers do. Overhead = the target's latency percentile minus the baseline's. The reference's
proposed bar: error rate under 1 %, overhead p50 at most 15 ms and p95 at most 50 ms.

Each run's rows and verdicts are appended, as one JSON line with the commit they measured
(``git describe --always --dirty``), the time and the options, to ``--record``
(``bench/history/overhead.jsonl`` by default, kept in the repository: the reference asks for
results per commit).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu as C  # the start helpers of bench/core/cpu.py
import run as R  # the helpers of bench/core/run.py

# ~1 KB of an ordinary support conversation with personal data in it (no quotes: post.lua
# places it in a JSON string as it is).
PROMPT = (
    "Hello, this is Margaret Chen from the Parramatta office. A customer, Daniel Okafor, called "
    "this morning about his renewal. He asked us to reply to daniel.okafor@example.com or to "
    "ring him on 0412 345 678 after four. His tax file number is 123 456 782 and it is on the "
    "form he sent last week together with the signed consent. Please summarise what we need "
    "from him before the renewal can go ahead, list the documents that are still missing, and "
    "draft a short, friendly reply that explains the next steps, the expected processing time "
    "and who he can contact if anything is unclear. Keep the tone warm but professional, avoid "
    "jargon, and mention that our office hours changed this month: we now open at half past "
    "eight and close at five, and we are closed on public holidays. Also add a reminder that "
    "he can upload documents through the customer portal instead of posting them, which is "
    "faster and lets him track the status of his request online at any time of the day."
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="the backend's delay varies uniformly by this fraction (0.5: 25-75 ms for 50 ms)",
    )
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument(
        "--pg", default=None, help="also Portcullis on this PostgreSQL URL (postgresql+asyncpg://…)"
    )
    ap.add_argument(
        "--targets",
        default=(
            "backend,forwarder,portcullis,portcullis-pg,portcullis+patterns,portcullis+pii,litellm"
        ),
        help="which targets, comma-separated (the backend, the baseline, always runs)",
    )
    ap.add_argument(
        "--record",
        type=Path,
        default=R.HERE.parent / "history" / "overhead.jsonl",
        help="append this run's rows and verdicts to this file, one JSON line",
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    chosen = set(args.targets.split(",")) | {"backend"}
    tmp = Path(tempfile.mkdtemp(prefix="pcs-bench-overhead-"))
    procs: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        up = R.free_port()
        upstream = R.HERE / "slow_upstream.py"
        cmd = [R.PY, str(upstream), str(up), "1", str(args.delay), str(args.jitter)]
        procs.append(R.start(cmd, 0))
        R.wait_http(f"http://127.0.0.1:{up}/v1/chat/completions", ok=(405,))
        targets: list[tuple[str, int | None, str, str]] = [
            ("backend", None, f"http://127.0.0.1:{up}/v1/chat/completions", "")
        ]
        if "forwarder" in chosen:
            fwd, url, _ = C.start_forwarder(up, procs)
            targets.append(("forwarder", fwd.pid, url, ""))
        if "portcullis" in chosen:
            gw, url, key = C.start_gateway(tmp, up, "gw", {}, procs)
            targets.append(("portcullis", gw.pid, url, key))
        if args.pg and "portcullis-pg" in chosen:
            gw_pg, url, key = C.start_gateway(tmp, up, "gw-pg", {}, procs, database_url=args.pg)
            targets.append(("portcullis-pg", gw_pg.pid, url, key))
        if "portcullis+patterns" in chosen:
            gw_pat, url, key = C.start_gateway(tmp, up, "gw-pat", {}, procs, pii=True, ner=False)
            targets.append(("portcullis+patterns", gw_pat.pid, url, key))
        if "portcullis+pii" in chosen:
            gw_pii, url, key = C.start_gateway(tmp, up, "gw-pii", {}, procs, pii=True)
            targets.append(("portcullis+pii", gw_pii.pid, url, key))
        if not args.skip_litellm and "litellm" in chosen:
            n = len(procs)
            base, ll_key = R.start_litellm(tmp, up, procs)
            targets.append(("litellm", procs[n].pid, base + "/chat/completions", ll_key))
        for name, pid, url, key in targets:
            R.wrk(url, args.conc, 3, False, key, "bench-model", prompt=PROMPT, vary=True)
            before = C.thread_times(pid) if pid else {}
            r = R.wrk(
                url, args.conc, args.duration, False, key, "bench-model", prompt=PROMPT, vary=True
            )
            if pid:
                cpu = C.thread_cpu(before, C.thread_times(pid), r["requests"]).values()
                r["cpu_us"] = round(sum(user + system for user, system in cpu))
            r["target"] = name
            rows.append(r)
            print(json.dumps(r), flush=True)
    finally:
        for p in reversed(procs):
            R.stop(p)
    base = rows[0]
    print(
        "\n| target | RPS | p50 ms | p95 ms | p99 ms | overhead p50 / p95 ms | CPU µs/request "
        "| errors |\n|---|---:|---:|---:|---:|---|---:|---:|"
    )
    for r in rows:
        over = (
            "-"
            if r is base
            else f"{(r['p50_us'] - base['p50_us']) / 1000:.1f} / "
            f"{(r['p95_us'] - base['p95_us']) / 1000:.1f}"
        )
        errors = r["errors"] + r["status_errors"]
        print(
            f"| {r['target']} | {r['rps']:,.0f} | {r['p50_us'] / 1000:.1f} | "
            f"{r['p95_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {over} | "
            f"{r.get('cpu_us', '-')} | {errors} / {r['requests']} |"
        )
    verdicts = _check_bars(rows)
    if not args.no_record:
        _record(args.record, args, rows, verdicts)
    sys.exit(0 if all(v["met"] for v in verdicts) else 1)


def _record(
    path: Path,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    verdicts: list[dict[str, Any]],
) -> None:
    """One JSON line: the commit measured, when, the options, the rows and the verdicts."""
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        cwd=R.HERE,
        check=False,
    ).stdout.strip()
    line = {
        "commit": commit or None,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "connections": args.conc,
        "backend_delay_s": args.delay,
        "backend_jitter": args.jitter,
        "rows": rows,
        "verdicts": verdicts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(line) + "\n")
    print(f"recorded in {path}")


def _check_bars(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reliability reference's L-1 bars for each Portcullis row: errors under 1 %, overhead
    p50 <= 15 ms and p95 <= 50 ms over the backend alone. Prints each verdict and returns them
    (``target``, ``bar``, ``value``, ``met``). (The reference states them for two cores; this
    layout gives each target one.)"""
    base, out = rows[0], []
    for r in rows:
        if not r["target"].startswith("portcullis"):
            continue
        p50 = (r["p50_us"] - base["p50_us"]) / 1000
        p95 = (r["p95_us"] - base["p95_us"]) / 1000
        errors = (r["errors"] + r["status_errors"]) / max(1, r["requests"])
        for bar, value, ok in (
            ("errors < 1 %", round(errors, 4), errors < 0.01),
            ("overhead p50 <= 15 ms", round(p50, 1), p50 <= 15),
            ("overhead p95 <= 50 ms", round(p95, 1), p95 <= 50),
        ):
            print(f"L-1 {r['target']} {bar} ({value}): {'met' if ok else 'MISSED'}")
            out.append({"target": r["target"], "bar": bar, "value": value, "met": ok})
    return out


if __name__ == "__main__":
    main()
