"""CPU per request of the gateway's audit path alone, in one process, and an A/B of two trees.

    .venv/bin/python bench/audit/path_cpu.py [--requests 8000] [--conc 16]
        [--ab OTHER_TREE --rounds 3]

What one request costs the gateway's audit, without HTTP around it: 16 request loops (as
``bench/core`` at c=16), each building a gateway-shaped event (the principal, backend and
decision as the read-only views the gateway hands over, a generated request id), awaiting its
durable write-ahead intent through ``DatabaseAuditSink`` (SQLite, WAL, ``synchronous=FULL``,
group commit) and handing over its completion record as the gateway does. Prints the process's
CPU time (all threads) per request, and the time to build the two entries alone. The event loop
is the core path's; the process is pinned to one core when ``taskset`` is there.

``--ab DIR`` runs the same in alternating rounds with another work tree first on
``PYTHONPATH`` (for example ``git worktree add /tmp/old HEAD~1``): on a shared machine whose
speed drifts, alternation is what makes two trees comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


async def measure(n: int, conc: int) -> dict[str, float]:
    sys.path.insert(0, str(HERE))
    import bench_audit as B

    from audit.event import Fixed
    from audit.store import make_entry, static_part
    from gateway.http.request_id import request_id

    base = B.ev(0)
    principal, backend = Fixed(base["principal"]), Fixed(base["backend"])
    obligations = Fixed(base["decision"]["obligations"])
    decision = Fixed({**base["decision"], "obligations": obligations})

    def event(i: int) -> dict[str, Any]:
        e: dict[str, Any] = B.ev(i)
        e.update(principal=principal, backend=backend, decision=decision)
        e["decision_input"].update(principal=principal, backends=[backend])
        e.update(request_id=request_id({}), ts="2026-11-29T18:00:00.123456Z")
        return e

    root = Path(tempfile.mkdtemp(prefix="pcs-audit-path-"))
    engine = await B.fresh(f"sqlite+aiosqlite:///{root}/audit.db")
    sink = await B.bench_sink(engine, completion_linger_s=0.002)
    pending: set[asyncio.Task[None]] = set()

    async def loop(w: int) -> None:
        for i in range(w, n, conc):
            e = event(i)
            await sink.intent(e)
            await asyncio.sleep(0)  # the upstream call
            t = asyncio.create_task(sink.complete(e))
            pending.add(t)
            t.add_done_callback(pending.discard)

    try:
        await asyncio.gather(*(loop(w) for w in range(conc)))  # warm-up
        c0 = time.process_time()
        await asyncio.gather(*(loop(w) for w in range(conc)))
        while pending:
            await asyncio.sleep(0.001)
        path = (time.process_time() - c0) / n * 1e6
        events = [event(i) for i in range(n)]
        c0 = time.process_time()
        for e in events:
            static = static_part(e)
            make_entry("intent", e, "w", static)
            make_entry("complete", e, "w", static)
        build = (time.process_time() - c0) / n * 1e6
    finally:
        await sink.close()
        await engine.dispose()
        shutil.rmtree(root)
    return {"cpu_us_per_request": round(path), "build_us_per_request": round(build)}


def run_tree(tree: str | None, n: int, conc: int) -> dict[str, float]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    cmd = [*pin, sys.executable, __file__, "--requests", str(n), "--conc", str(conc), "--once"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=8000)
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--ab", metavar="TREE")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.once:
        sys.path.insert(0, os.environ.get("PYTHONPATH") or str(HERE.parents[1]))
        print(json.dumps(asyncio.run(measure(args.requests, args.conc))))
        return
    if not args.ab:
        print(json.dumps(run_tree(None, args.requests, args.conc)))
        return
    series: dict[str, list[dict[str, float]]] = {"other": [], "this": []}
    for _ in range(args.rounds):
        for name, tree in (("other", args.ab), ("this", str(HERE.parents[1]))):
            r = run_tree(tree, args.requests, args.conc)
            series[name].append(r)
            print(
                f"{name:5} {r['cpu_us_per_request']:5} µs CPU per request,"
                f" {r['build_us_per_request']:4} µs building the two entries"
            )
    print(json.dumps(series))


if __name__ == "__main__":
    main()
