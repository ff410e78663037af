"""Policy decision latency: embedded engine (in-thread, through the client, in a worker
process), the client's cache hit, the OPA REST path (fake sidecar) and the cache hit rate on a
realistic request mix. One run, side by side; prints Markdown tables.

    .venv/bin/python bench/policy/run.py [--n 2000] [--mix 20000]

The realistic mix: 300 API keys drawn Zipf-like (a few busy keys), principals spread over the
reference's jurisdictions and sectors, two model families (four candidate sets), 40 % of
requests at the final phase with PII counts (1-3 entity types, counts 1-3), over one UTC day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from prometheus_client import CollectorRegistry

from gateway.config.policy import PolicySettings
from gateway.errors import GatewayError
from gateway.policy.bundle import load_bundle
from gateway.policy.client import PolicyClient, build_policy_client, cache_key
from gateway.policy.embedded import EmbeddedEngine
from gateway.policy.opa import OpaEngine
from tests.opa_fake.server import FakeOpa
from tests.policy_fixtures import make_input

ALL = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")
JURIS = ["AU", "AU-NSW", "KR", "TW", "US", "US-TX", "IT", "DE", "GB", "JP", "CA", "IN", "FR", "NL"]
SECTORS = [
    "government",
    "private",
    "private",
    "private",
    "financial",
    "healthcare",
    "education",
    "defence",
]
ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "LOCATION", "IP_ADDRESS", "CREDIT_CARD"]
CANDIDATE_SETS = [
    ("deepseek-hosted", "deepseek-self"),
    ("azure-eu", "openai"),
    ALL,
    ("deepseek-self",),
]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def row(name: str, xs: list[float], base: float | None = None) -> str:
    p50 = pct(xs, 0.5)
    ratio = f"{p50 / base:.2f}x" if base else "1.00x"
    return (
        f"| {name} | {p50 * 1e6:,.1f} | {pct(xs, 0.9) * 1e6:,.1f} | {pct(xs, 0.99) * 1e6:,.1f} "
        f"| {statistics.mean(xs) * 1e6:,.1f} | {ratio} |"
    )


def inputs(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            make_input(
                rnd.choice(JURIS),
                rnd.choice(SECTORS),
                user=f"u{i}",
                at=f"2026-11-29T{rnd.randrange(24):02d}:00:00",
            )
        )
    return out


def mix(n: int, seed: int = 7) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    rnd = random.Random(seed)
    keys = [(rnd.choice(JURIS), rnd.choice(SECTORS), f"user{k}") for k in range(300)]
    weights = [1.0 / (k + 1) ** 1.1 for k in range(300)]
    out = []
    for _ in range(n):
        j, s, u = rnd.choices(keys, weights)[0]
        cands = rnd.choice(CANDIDATE_SETS)
        pii = None
        if rnd.random() < 0.4:
            pii = {e: rnd.randint(1, 3) for e in rnd.sample(ENTITIES, rnd.randint(1, 3))}
        when = f"2026-11-29T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00"
        out.append((make_input(j, s, user=u, pii=pii, backends=cands, at=when), cands))
    return out


async def timed_decide(client: PolicyClient, inps: list[dict[str, Any]]) -> list[float]:
    xs = []
    for inp in inps:
        t = time.perf_counter()
        try:
            await client.decide(inp, ALL)
        except GatewayError:  # past the deadline on a loaded machine; not timed
            continue
        xs.append(time.perf_counter() - t)
    return xs


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--mix", type=int, default=20000)
    args = ap.parse_args()
    inps = inputs(args.n)
    bundle = load_bundle()

    # 1. the engine alone, in this thread (JSON in, JSON out)
    eng = EmbeddedEngine(bundle, threads=1, warm=False)
    payloads = [json.dumps(i) for i in inps]
    for p in payloads[:50]:
        eng.evaluate_sync(p)
    raw = []
    for p in payloads:
        t = time.perf_counter()
        eng.evaluate_sync(p)
        raw.append(time.perf_counter() - t)
    await eng.close()

    # 2. the client, cache off: thread hop + deadline + validation
    miss_client = await build_policy_client(PolicySettings(cache_size=0), CollectorRegistry())
    await timed_decide(miss_client, inps[:50])
    miss = await timed_decide(miss_client, inps)

    # 3. the client, cache hit (same inputs again, cache warm)
    hit_client = await build_policy_client(PolicySettings(), CollectorRegistry())
    await timed_decide(hit_client, inps)
    hit = await timed_decide(hit_client, inps)
    keys, narrow = [], []
    plan = hit_client.engine.key_plan  # type: ignore[attr-defined]
    for inp in inps[:500]:
        t = time.perf_counter()
        cache_key(inp, "r")
        keys.append(time.perf_counter() - t)
        t = time.perf_counter()
        plan.key(inp, "r")
        narrow.append(time.perf_counter() - t)

    # 4. worker process (isolation: process), cache off
    proc_client = await build_policy_client(
        PolicySettings(cache_size=0, isolation="process"), CollectorRegistry()
    )
    await timed_decide(proc_client, inps[:50])
    proc = await timed_decide(proc_client, inps[: args.n // 2])
    await proc_client.close()

    # 5. OPA REST path against the fake sidecar (regorus behind aiohttp), cache off
    fake = FakeOpa(bundle)
    await fake.start()
    opa_engine = OpaEngine(fake.url)
    await opa_engine.start()
    opa_client = PolicyClient(
        opa_engine, PolicySettings(engine="opa", cache_size=0), metrics_registry=CollectorRegistry()
    )
    await timed_decide(opa_client, inps[:50])
    opa = await timed_decide(opa_client, inps[: args.n // 2])
    await opa_client.close()
    await fake.stop()

    print(f"\nDecision latency, n={args.n} distinct inputs (µs)\n")
    print("| path | p50 | p90 | p99 | mean | p50 vs engine |")
    print("|---|---:|---:|---:|---:|---:|")
    base = pct(raw, 0.5)
    print(row("engine.evaluate_sync (regorus, in thread)", raw))
    print(row("client.decide, cache miss (thread pool)", miss, base))
    print(row("client.decide, cache hit", hit, base))
    print(row("  key: the pack's read paths (used)", narrow, base))
    print(row("  key: the whole input (OPA, bare input)", keys, base))
    print(row("client.decide, worker process, miss", proc, base))
    print(row("client.decide, OPA REST (fake sidecar), miss", opa, base))

    # 6. realistic mix: hit rate and latency
    mixed = mix(args.mix)
    for size in (4096, 256):
        c = await build_policy_client(PolicySettings(cache_size=size), CollectorRegistry())
        xs = []
        by_phase = {"route": [0, 0], "final": [0, 0]}
        failed = 0
        for inp, cands in mixed:
            before = c.hits
            t = time.perf_counter()
            try:
                await c.decide(inp, cands)
            except GatewayError:  # a missed deadline on a loaded machine: counted, not timed
                failed += 1
                continue
            xs.append(time.perf_counter() - t)
            by_phase[inp["phase"]][0] += c.hits - before
            by_phase[inp["phase"]][1] += 1
        rate = c.hits / (c.hits + c.misses)
        phases = ", ".join(f"{k} {h / n:.1%} of {n}" for k, (h, n) in by_phase.items())
        print(
            f"\nRealistic mix, {args.mix} requests, cache_size={size}: hit rate {rate:.1%} "
            f"({phases}), p50 {pct(xs, 0.5) * 1e6:,.1f} µs, p99 {pct(xs, 0.99) * 1e6:,.1f} µs, "
            f"mean {statistics.mean(xs) * 1e6:,.1f} µs, failed closed {failed}"
        )
        await c.close()
    await miss_client.close()
    await hit_client.close()


if __name__ == "__main__":
    asyncio.run(main())
