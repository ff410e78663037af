"""CPU per request of the gateway (or the bare forwarder) under wrk, and an A/B of two trees.

    .venv/bin/python bench/core/cpu.py [--target gateway|forwarder] [--conc 16] [--duration 8]
        [--stream] [--threads] [--ab OTHER_TREE --rounds 3] [--env NAME=VALUE ...]

Same set-up as ``run.py`` (mock upstream and wrk on core 0, the target pinned to core 1, the
gateway's core path on SQLite, no PII scan), but instead of a table of rates it reads the target
process's user and system time from ``/proc`` around one wrk run and prints **CPU µs per
request** (per thread with ``--threads``): on a shared machine whose speed drifts, the cost of
a request is steadier than its rate. ``--ab DIR`` runs the gateway from another work tree (for
example ``git worktree add /tmp/old HEAD~1``) and from this one in alternating rounds, with the
same virtual environment (``PYTHONPATH`` puts the other tree first), and prints both series.

``--together DIR`` is the A/B for a machine whose speed drifts within a run: both gateways
(the other tree's and this one's) run **at the same time**, pinned to the same core, each under
its own wrk at ``--conc``. The scheduler shares the core between them, so whatever slows the
machine slows both alike, and the ratio of their rates is the inverse ratio of their CPU per
request. Each round prints both rates, both CPU figures and the ratio; ``--rounds`` repeats it,
swapping which gateway starts first. ``--together forwarder`` pits this tree's gateway against
the bare forwarder the same way: the ratio of rates is then the "RPS vs forwarder" of
``run.py``'s table, without the drift between the forwarder's cell and the gateway's.
``--together DIR --tracing`` traces every request of this tree's gateway (``tracing.endpoint``
on a sink, ``otlp_sink.py``, on core 0): against the same tree untraced (``DIR`` = this tree),
the ratio is what tracing costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from typing import Any

import run as R  # the helpers of bench/core/run.py

TICK = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int) -> dict[str, tuple[str, int, int]]:
    """thread id -> (name, user ticks, system ticks)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # a thread that ended between the listing and the read
            continue
        name = raw.split("(", 1)[1].rsplit(")", 1)[0]
        fields = raw.rsplit(")", 1)[1].split()
        out[tid] = (name, int(fields[11]), int(fields[12]))
    return out


def start_gateway(
    tmp: Path,
    up: int,
    name: str,
    env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
    database_url: str | None = None,
    pii: bool = False,
    ner: bool = True,
) -> tuple[subprocess.Popen[bytes], str, str]:
    """A gateway on the core path (SQLite audit, or ``database_url``; the PII guard off unless
    ``pii``, names and places not sought without ``ner``), pinned to core 1: (process, url,
    key)."""
    port = R.free_port()
    cfg = R.gateway_config(tmp, up, name, database_url, pii=pii, ner=ner)
    key = R.migrate_and_key(cfg, env)
    proc = R.start(
        [
            *(R.PORTCULLIS, "-c", str(cfg), "serve", "--port", str(port)),
            *("--no-migrate", "--log-level", "warning"),
        ],
        1,
        env=env,
        log=tmp / f"{name}.log",
    )
    procs.append(proc)
    R.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=180 if pii and ner else 90)  # NER
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions", key


def start_forwarder(
    up: int, procs: list[subprocess.Popen[bytes]], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, str]:
    """The bare forwarder pinned to core 1: (process, url, key)."""
    port = R.free_port()
    proc = R.start([R.PY, str(R.HERE / "forwarder.py"), str(up), str(port)], 1, env=env)
    procs.append(proc)
    R.wait_http(f"http://127.0.0.1:{port}/v1/chat/completions", ok=(405,))
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions", ""


def thread_cpu(
    before: dict[str, tuple[str, int, int]], after: dict[str, tuple[str, int, int]], requests: int
) -> dict[str, tuple[float, float]]:
    """``name:tid`` -> (user, system) µs of CPU per request between two ``thread_times``."""
    out = {}
    for tid, (name, user, system) in after.items():
        _, u0, s0 = before.get(tid, (name, 0, 0))
        out[f"{name}:{tid}"] = (
            (user - u0) / TICK / requests * 1e6,
            (system - s0) / TICK / requests * 1e6,
        )
    return out


def measure(
    target: str, conc: int, duration: int, stream: bool, env: dict[str, str]
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pcs-cpu-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up = R.start_mock_upstream(procs)
        if target == "forwarder":
            proc, url, key = start_forwarder(up, procs, env)
        else:
            proc, url, key = start_gateway(tmp, up, "gw", env, procs)
        R.wrk(url, conc, 2, stream, key, "bench-model")  # warm-up
        before = thread_times(proc.pid)
        r = R.wrk(url, conc, duration, stream, key, "bench-model")
        after = thread_times(proc.pid)
        threads = {
            label: {"user_us": round(user), "sys_us": round(system)}
            for label, (user, system) in thread_cpu(before, after, r["requests"]).items()
            if user + system >= 1
        }
        total = sum(v["user_us"] + v["sys_us"] for v in threads.values())
        return {
            "target": target,
            "conc": conc,
            "stream": stream,
            "rps": round(r["rps"]),
            "p50_ms": r["p50_us"] / 1000,
            "cpu_us_per_request": total,
            "threads": threads,
            "errors": r["errors"] + r["status_errors"],
        }
    finally:
        for p in reversed(procs):
            R.stop(p)


def together(
    other: str, conc: int, duration: int, stream: bool, rounds: int, tracing: bool = False
) -> None:
    """Both trees' gateways at once on one core, each under its own wrk (see the docstring);
    ``tracing``: this tree's gateway traces every request to a sink on core 0."""
    from concurrent.futures import ThreadPoolExecutor

    ratios = []
    for i in range(rounds):
        tmp = Path(tempfile.mkdtemp(prefix="pcs-cpu-"))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            up = R.start_mock_upstream(procs)
            this_env: dict[str, str] = {}
            if tracing:
                sink = R.free_port()
                procs.append(R.start([R.PY, str(R.HERE / "otlp_sink.py"), str(sink)], 0))
                this_env["PORTCULLIS_TRACING__ENDPOINT"] = f"http://127.0.0.1:{sink}/v1/traces"
            order = [("other", {"PYTHONPATH": other}), ("this", this_env)]
            if i % 2:
                order.reverse()
            gws = {
                name: start_forwarder(up, procs)
                if other == "forwarder" and name == "other"
                else start_gateway(tmp, up, name, env, procs)
                for name, env in order
            }
            with ThreadPoolExecutor(2) as pool:  # warm-up, then the measured run
                for d in (2, duration):
                    before = {n: thread_times(g[0].pid) for n, g in gws.items()}
                    runs = {
                        n: pool.submit(R.wrk, g[1], conc, d, stream, g[2], "bench-model")
                        for n, g in gws.items()
                    }
                    res = {n: f.result() for n, f in runs.items()}
                    after = {n: thread_times(g[0].pid) for n, g in gws.items()}
            line = []
            for n in ("other", "this"):
                per_thread = thread_cpu(before[n], after[n], res[n]["requests"]).values()
                cpu = sum(user + system for user, system in per_thread)
                line.append(f"{n} {res[n]['rps']:6.0f} rps {cpu:5.0f} µs CPU/request")
            ratio = res["this"]["rps"] / res["other"]["rps"]
            ratios.append(round(ratio, 3))
            print("  ".join(line) + f"  this/other rate {ratio:.3f}", flush=True)
        finally:
            for p in reversed(procs):
                R.stop(p)
    print(json.dumps({"this_over_other_rate": ratios}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["gateway", "forwarder"], default="gateway")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--threads", action="store_true", help="print CPU per request per thread")
    ap.add_argument("--ab", metavar="TREE", help="another work tree to alternate with this one")
    ap.add_argument(
        "--together", metavar="TREE", help="both trees (or 'forwarder') at once on one core"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tracing", action="store_true", help="with --together: this tree traced")
    ap.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    env = dict(e.split("=", 1) for e in args.env)
    if args.together:
        together(args.together, args.conc, args.duration, args.stream, args.rounds, args.tracing)
        return
    if not args.ab:
        r = measure(args.target, args.conc, args.duration, args.stream, env)
        if not args.threads:
            r.pop("threads")
        print(json.dumps(r))
        return
    series: dict[str, list[int]] = {"other": [], "this": []}
    for _ in range(args.rounds):
        for name, extra in (("other", {"PYTHONPATH": args.ab}), ("this", {})):
            r = measure("gateway", args.conc, args.duration, args.stream, {**env, **extra})
            series[name].append(r["cpu_us_per_request"])
            print(f"{name:5} {r['rps']:6} rps  {r['cpu_us_per_request']:5} µs CPU per request")
    print(json.dumps(series))


if __name__ == "__main__":
    main()
