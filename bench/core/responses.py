"""``/v1/responses`` (or Anthropic's ``/v1/messages``) against ``/v1/chat/completions`` on the
same gateway, and against LiteLLM's.

    .venv/bin/python bench/core/responses.py [--api responses|messages] [--duration 8]
        [--conc 1,16] [--rounds 2] [--skip-litellm]

With ``--api messages`` the translated request is Anthropic's (``post.lua`` with
``BENCH_API=messages``), which both Portcullis and LiteLLM serve over the backend's chat
completions as well.

Same set-up as ``run.py`` (mock upstream and wrk on core 0, each target pinned to core 1, the
gateway's core path on SQLite, no PII scan): the same 60-word request, once as a chat completion
and once as a Responses request (``post.lua`` with ``BENCH_API=responses``), JSON and SSE. Both
Portcullis and LiteLLM serve the Responses request over the backend's chat completions (LiteLLM
with the model as ``deepseek/``: a provider without a Responses API of its own, so LiteLLM
bridges to chat completions; as ``hosted_vllm/`` it would call the backend's own
``/v1/responses``). Rounds alternate the APIs so the
machine's drift hits both; each line is one wrk run with the gateway's CPU per request (user +
system, from ``/proc``). The summary gives the Responses path's cost over chat on Portcullis and
its rate against LiteLLM's Responses path.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cpu as C  # the CPU-per-request helpers of bench/core/cpu.py
import run as R  # the helpers of bench/core/run.py


def run_one(
    pid: int | None, url: str, conc: int, duration: int, stream: bool, key: str, api: str
) -> dict[str, Any]:
    R.wrk(url, conc, 1, stream, key, "bench-model", api)  # warm this path
    before = C.thread_times(pid) if pid else {}
    r: dict[str, Any] = R.wrk(url, conc, duration, stream, key, "bench-model", api)
    if pid:
        after = C.thread_times(pid)
        per_thread = C.thread_cpu(before, after, r["requests"]).values()
        r["cpu_us"] = sum(user + system for user, system in per_thread)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--conc", default="1,16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument("--api", choices=("responses", "messages"), default="responses")
    args = ap.parse_args()
    other = args.api
    tmp = Path(tempfile.mkdtemp(prefix="pcs-bench-responses-"))
    procs: list[subprocess.Popen[bytes]] = []
    rows: list[dict[str, Any]] = []
    try:
        up = R.start_mock_upstream(procs)
        gw, gw_url, key = C.start_gateway(tmp, up, "gw", {}, procs)
        base = gw_url.removesuffix("/chat/completions")
        targets = [("portcullis", gw.pid, base, key)]
        if not args.skip_litellm:
            ll_base, ll_key = R.start_litellm(tmp, up, procs, model="deepseek/bench-model")
            targets.append(("litellm", None, ll_base, ll_key))
        for stream in (False, True):
            for conc in (int(c) for c in args.conc.split(",")):
                for i in range(args.rounds):
                    apis = ["chat", other] if i % 2 == 0 else [other, "chat"]
                    for name, pid, url, k in targets:
                        for api in apis:
                            path = f"/{other}" if api == other else "/chat/completions"
                            r = run_one(pid, url + path, conc, args.duration, stream, k, api)
                            r.update(target=name, api=api, mode="sse" if stream else "json")
                            r["conc"] = conc
                            rows.append(r)
                            cpu = f"{r['cpu_us']:6.0f} µs CPU/request" if "cpu_us" in r else ""
                            print(
                                f"{name:10} {r['mode']:4} c={conc:<3} {api:9} {r['rps']:7.0f} rps"
                                f"  p50 {r['p50_us'] / 1000:7.2f} ms  errors "
                                f"{r['errors']}+{r['status_errors']}  {cpu}",
                                flush=True,
                            )
    finally:
        for p in reversed(procs):
            R.stop(p)
    summarise(rows, other)


def summarise(rows: list[dict[str, Any]], other: str = "responses") -> None:
    def med(target: str, api: str, mode: str, conc: int, key: str) -> float | None:
        xs = [
            r[key]
            for r in rows
            if (r["target"], r["api"], r["mode"], r["conc"]) == (target, api, mode, conc)
            and key in r
        ]
        return statistics.median(xs) if xs else None

    print(
        f"\n| mode | conc | Portcullis chat RPS | Portcullis {other} RPS | {other} / chat rate "
        f"| CPU µs/request chat → {other} | LiteLLM {other} RPS | Portcullis / LiteLLM "
        f"({other}) |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for mode in ("json", "sse"):
        for conc in sorted({r["conc"] for r in rows}):
            chat = med("portcullis", "chat", mode, conc, "rps")
            resp = med("portcullis", other, mode, conc, "rps")
            if chat is None or resp is None:
                continue
            cpu_c = med("portcullis", "chat", mode, conc, "cpu_us")
            cpu_r = med("portcullis", other, mode, conc, "cpu_us")
            ll = med("litellm", other, mode, conc, "rps")
            print(
                f"| {mode} | {conc} | {chat:,.0f} | {resp:,.0f} | {resp / chat:.2f} | "
                f"{cpu_c:,.0f} → {cpu_r:,.0f} | {f'{ll:,.0f}' if ll else '-'} | "
                f"{f'{resp / ll:.1f}x' if ll else '-'} |"
            )


if __name__ == "__main__":
    main()
