"""Garbage-collector pauses of the gateway under load, with and without the frozen start-up heap.

    .venv/bin/python bench/core/gc_pauses.py [--duration 20] [--conc 16]

Same set-up as ``run.py`` (mock upstream and wrk on core 0, the gateway pinned to core 1, JSON
chat completions, the audit on SQLite), PII inspection on and off. Each gateway runs through
``gc_probe.py``, which counts the full (generation 2) collections and times them; the
"thawed" rows replace :func:`gateway.heap.freeze_startup_heap` by a no-op, i.e. the gateway as
it was before it froze its heap. Prints requests/s, p50/p99 and the full collections that
happened during the timed run (after the warm-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from typing import Any

import run as R  # the helpers of bench/core/run.py


def measure(pii: bool, freeze: bool, conc: int, duration: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pcs-gc-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up = R.start_mock_upstream(procs)
        cfg = R.gateway_config(tmp, up, "gw", None, pii=pii)
        key = R.migrate_and_key(cfg)
        port = R.free_port()
        stats = tmp / "gc.json"
        env = {"GC_PROBE_OUT": str(stats), "GC_PROBE_THAW": "" if freeze else "1"}
        probe = [R.PY, str(R.HERE / "gc_probe.py")]
        args = ["-c", str(cfg), "serve", "--port", str(port), "--no-migrate"]
        procs.append(R.start([*probe, *args, "--log-level", "warning"], 1, env=env))
        R.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        R.wrk(url, conc, 3, False, key, "bench-model")  # warm-up
        time.sleep(1.2)
        before = json.loads(stats.read_text())
        r = R.wrk(url, conc, duration, False, key, "bench-model")
        time.sleep(1.2)  # the probe writes its file every second
        after = json.loads(stats.read_text())
        pauses = after["pauses_ms"][len(before["pauses_ms"]) :]
        return {
            "pii": pii,
            "heap": "frozen" if freeze else "thawed",
            "rps": round(r["rps"]),
            "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "full_collections": len(pauses),
            "pause_median_ms": round(statistics.median(pauses), 1) if pauses else 0.0,
            "pause_max_ms": round(max(pauses), 1) if pauses else 0.0,
            "frozen_objects": after["frozen"],
        }
    finally:
        for p in reversed(procs):
            R.stop(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--conc", type=int, default=16)
    args = ap.parse_args()
    rows = [
        measure(pii, freeze, args.conc, args.duration)
        for pii in (True, False)
        for freeze in (False, True)
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=R.ROOT
    ).stdout.strip()
    print(f"\ncommit {commit}; c={args.conc}, {args.duration} s per row\n")
    print("| PII | start-up heap | RPS | p50 ms | p99 ms | full collections | pause median ms "
          "| pause max ms | frozen objects |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {'on' if r['pii'] else 'off'} | {r['heap']} | {r['rps']:,} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['full_collections']} | {r['pause_median_ms']} | "
            f"{r['pause_max_ms']} | {r['frozen_objects']:,} |"
        )


if __name__ == "__main__":
    main()
