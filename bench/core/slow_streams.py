"""Many slow streams at once, and a probe beside them (docs/benchmarks.md; reliability L-2).

    .venv/bin/python bench/core/slow_streams.py [--streams 200] [--duration 60]
        [--interval 1.0] [--skip-litellm]

A model generating answers slowly keeps many streams open for a long time. Against one slow
backend (``slow_upstream.py``: one chunk per ``--interval`` seconds, ``--duration`` of them),
each target in turn — the bare forwarder, Portcullis (core path: key, policy, limits, routing,
durable audit; SQLite; no PII scan), LiteLLM's proxy — holds ``--streams`` streams, opened over
the first interval (so that their chunks arrive spread over each second, as independent
clients' do), while a probe sends one small non-streamed request per second. Targets run one worker
each, pinned to core 1; the backend and this client to core 0. Per target: how many streams
ended whole (every chunk, then ``[DONE]``), the probe's p50/p95 idle and under the load, the
target's memory (RSS of its process tree) before and after, its CPU, and for Portcullis the
p99 of its event-loop lag (``portcullis_event_loop_lag_seconds``, a heartbeat every 0.25 s).
The reference's bar: probe p95 at most 2x idle, RSS growth at most 200 MB, every stream whole,
event-loop lag p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu as C  # the CPU helpers of bench/core/cpu.py
import run as R  # the helpers of bench/core/run.py

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss_mb(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total / 2**20


def cpu_s(pid: int) -> float:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def lag_buckets(metrics_url: str) -> dict[float, float]:
    """``le`` -> cumulative count of the gateway's event-loop lag histogram."""
    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("portcullis_event_loop_lag_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def lag_p99_ms(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The p99 bucket bound of the heartbeats between two snapshots (ms), and their count."""
    delta = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    count = delta.get(float("inf"), 0.0)
    for le, cum in delta.items():
        if count and cum >= 0.99 * count:
            return le * 1000, int(count)
    return float("nan"), int(count)


async def probe(session: aiohttp.ClientSession, url: str, key: str) -> float | None:
    body = {"model": "bench-model", "messages": [{"role": "user", "content": "ping"}]}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    t0 = time.perf_counter()
    try:
        async with session.post(url, json=body, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                return None
    except aiohttp.ClientError:
        return None
    return (time.perf_counter() - t0) * 1000


async def stream(
    session: aiohttp.ClientSession, url: str, key: str, chunks: int, delay_s: float
) -> bool:
    """One stream, opened after ``delay_s``, read to its end: whole when every chunk and then
    ``[DONE]`` arrived."""
    await asyncio.sleep(delay_s)
    body = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "write slowly"}],
        "stream": True,
        "max_tokens": chunks,
    }
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    seen = 0
    try:
        async with session.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:
                return False
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    return seen == chunks
                if b'"content": "word' in line or b'"content":"word' in line:
                    seen += 1
    except aiohttp.ClientError:
        return False
    return False


async def measure(
    name: str, pid: int, url: str, key: str, args: argparse.Namespace, metrics: str | None
) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=args.duration * args.interval + 120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for _ in range(5):  # warm: connections, caches
            await probe(session, url, key)
        idle = []
        for _ in range(20):
            idle.append(await probe(session, url, key))
            await asyncio.sleep(0.1)
        rss0, cpu0 = rss_mb(pid), cpu_s(pid)
        lag0 = lag_buckets(metrics) if metrics else {}
        t0 = time.monotonic()
        # The streams open over one interval, so their chunks arrive spread over each second
        # as independent clients' would (opened at once, all 200 chunks would land together).
        tasks = [
            asyncio.create_task(
                stream(session, url, key, args.duration, i * args.interval / args.streams)
            )
            for i in range(args.streams)
        ]
        loaded: list[float | None] = []
        when: list[float] = []  # each probe's start, seconds into the run
        peak = rss0
        while not all(t.done() for t in tasks):
            when.append(time.monotonic() - t0)
            loaded.append(await probe(session, url, key))
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t0) % 1.0))
        whole = sum(1 for t in tasks if t.result())
        elapsed = time.monotonic() - t0
        rss1, cpu1 = rss_mb(pid), cpu_s(pid)
        lag = lag_p99_ms(lag0, lag_buckets(metrics)) if metrics else (float("nan"), 0)

    def pct(xs: list[float | None], q: float) -> float:
        ok = sorted(x for x in xs if x is not None)
        return ok[min(len(ok) - 1, int(q * len(ok)))] if ok else float("nan")

    # The steady state: the streams opening (the first seconds) and ending (the last) are
    # bursts of their own; in between only chunks flow.
    last = when[-1] if when else 0.0
    steady = [x for t, x in zip(when, loaded, strict=True) if 3.0 <= t <= last - 3.0]
    slowest = sorted(
        ((x, t) for t, x in zip(when, loaded, strict=True) if x is not None), reverse=True
    )[:3]
    return {
        "target": name,
        "streams": args.streams,
        "whole": whole,
        "elapsed_s": round(elapsed, 1),
        "probe_idle_p50_ms": round(statistics.median(x for x in idle if x is not None), 2),
        "probe_idle_p95_ms": round(pct(idle, 0.95), 2),
        "probe_load_p50_ms": round(pct(loaded, 0.5), 2),
        "probe_load_p95_ms": round(pct(loaded, 0.95), 2),
        "probe_steady_p95_ms": round(pct(steady, 0.95), 2),
        "probe_slowest": [(round(x, 1), round(t, 1)) for x, t in slowest],  # (ms, at s)
        "probe_failed": sum(1 for x in loaded if x is None),
        "rss_before_mb": round(rss0, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(rss1, 1),
        "cpu_s": round(cpu1 - cpu0, 2),
        "loop_lag_p99_ms": lag[0],
        "heartbeats": lag[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--duration", type=int, default=60, help="chunks per stream")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between chunks")
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--only", choices=["forwarder", "portcullis", "litellm"], default=None)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # this client beside the backend, away from the target
    tmp = Path(tempfile.mkdtemp(prefix="pcs-bench-slow-"))
    procs: list[subprocess.Popen[bytes]] = []
    rows = []
    try:
        up = R.free_port()
        procs.append(
            R.start([R.PY, str(R.HERE / "slow_upstream.py"), str(up), str(args.interval)], 0)
        )
        R.wait_http(f"http://127.0.0.1:{up}/v1/chat/completions", ok=(405,))
        fwd, fwd_url, _ = C.start_forwarder(up, procs)
        gw, gw_url, key = C.start_gateway(tmp, up, "gw", {}, procs)
        metrics = gw_url.replace("/v1/chat/completions", "/metrics")
        targets = [
            ("forwarder", fwd.pid, fwd_url, "", None),
            ("portcullis", gw.pid, gw_url, key, metrics),
        ]
        if not args.skip_litellm and args.only in (None, "litellm"):
            ll = len(procs)
            wait = args.duration * args.interval + 60  # LiteLLM's per-request timeout
            base, ll_key = R.start_litellm(tmp, up, procs, timeout_s=wait)
            targets.append(("litellm", procs[ll].pid, base + "/chat/completions", ll_key, None))
        for name, pid, url, k, m in targets:
            if args.only not in (None, name):
                continue
            row = asyncio.run(measure(name, pid, url, k, args, m))
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        for p in reversed(procs):
            R.stop(p)
    print(
        "\n| target | streams whole | probe p50 / p95 idle ms | probe p50 / p95 under load ms "
        "| p95 load / idle | p95 steady ms | RSS before → peak → after MB | CPU s "
        "| event-loop lag p99 ms |"
    )
    print("|---|---:|---|---|---:|---:|---|---:|---:|")
    for r in rows:
        ratio = r["probe_load_p95_ms"] / r["probe_idle_p95_ms"]
        lag = "-" if r["loop_lag_p99_ms"] != r["loop_lag_p99_ms"] else f"≤ {r['loop_lag_p99_ms']:g}"
        print(
            f"| {r['target']} | {r['whole']} / {r['streams']} | {r['probe_idle_p50_ms']} / "
            f"{r['probe_idle_p95_ms']} | {r['probe_load_p50_ms']} / {r['probe_load_p95_ms']} | "
            f"{ratio:.2f} | {r['probe_steady_p95_ms']} | {r['rss_before_mb']} → {r['rss_peak_mb']} → {r['rss_after_mb']} | "
            f"{r['cpu_s']} | {lag} |"
        )
    sys.exit(_check_bars(rows))


def _check_bars(rows: list[dict[str, Any]]) -> int:
    """The reliability reference's L-2 bars for Portcullis's row: every stream whole (or cleanly
    cut), probe p95 under load at most 2x idle, RSS growth at most 200 MB, event-loop lag p99
    under 100 ms. Prints each verdict; 1 if any is missed (a run without the row: 0)."""
    missed = 0
    for r in rows:
        if r["target"] != "portcullis":
            continue
        bars = [
            ("streams whole", r["whole"] == r["streams"]),
            ("probe p95 <= 2x idle", r["probe_load_p95_ms"] <= 2 * r["probe_idle_p95_ms"]),
            ("RSS growth <= 200 MB", r["rss_peak_mb"] - r["rss_before_mb"] <= 200),
            ("loop lag p99 < 100 ms", not r["loop_lag_p99_ms"] >= 100),
        ]
        for name, ok in bars:
            print(f"L-2 {name}: {'met' if ok else 'MISSED'}")
            missed += not ok
    return 1 if missed else 0


if __name__ == "__main__":
    main()
