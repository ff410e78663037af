"""Gateway core vs the bare upstream (the floor) vs LiteLLM's proxy, one run, same load.

    .venv/bin/python bench/core/run.py [--duration 10] [--skip-litellm] [--conc 1,16,64]

Each target gets one worker pinned to core 1; wrk (closed loop, 1 thread) and the mock upstream
share core 0. Same mock, same 60-word prompt, JSON and SSE, concurrency 1/16/64. LiteLLM is
installed by this script into its own throw-away virtual environment (bench/.litellm-venv),
never into the project. Prints a Markdown table; writes bench/results/core-<time>.json.
The gateway runs its core path: authentication, policy (embedded engine), limits, routing,
write-ahead audit to SQLite — no PII scan (pii.enabled: false). For that gateway the table also
gives its own p50 as its ``portcullis_gateway_seconds`` histogram defines it (total minus
upstream time), read from the completion records of the cell's requests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
LITELLM_VENV = ROOT / "bench" / ".litellm-venv"
LITELLM_SPEC = os.environ.get("BENCH_LITELLM", "litellm[proxy]==1.108.7")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 90, ok: tuple[int, ...] = (200, 401, 404, 405)) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start(
    cmd: list[str], core: int, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    full = ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else cmd
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(
        full,
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_mock_upstream(procs: list[subprocess.Popen[bytes]]) -> int:
    """Start the mock upstream on core 0 (added to ``procs``); returns its port."""
    port = free_port()
    procs.append(start([PY, str(HERE / "mock_upstream.py"), str(port)], 0))
    time.sleep(0.5)
    return port


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def wrk(
    url: str,
    conc: int,
    duration: int,
    stream: bool,
    key: str,
    model: str,
    api: str = "chat",
    prompt: str | None = None,
    vary: bool = False,
) -> dict[str, Any]:
    """One wrk run; ``api="responses"`` posts the same request as a Responses one; ``prompt``
    (no quotes or backslashes) replaces the 60-word default; ``vary`` (chat only) ends each
    request's prompt with its own number."""
    env = {
        **os.environ,
        "BENCH_KEY": key,
        "BENCH_STREAM": "1" if stream else "0",
        "BENCH_MODEL": model,
        "BENCH_API": api,
    }
    if prompt is not None:
        env["BENCH_PROMPT"] = prompt
    if vary:
        env["BENCH_VARY"] = "1"
    cmd = ["wrk", "-t1", f"-c{conc}", f"-d{duration}s", "-s", str(HERE / "post.lua"), url]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r: dict[str, Any] = json.loads(line[7:])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def ensure_litellm() -> Path:
    py = LITELLM_VENV / "bin" / "python"
    if not (LITELLM_VENV / ".ok").exists():
        subprocess.run([PY, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", LITELLM_SPEC], check=True)
        (LITELLM_VENV / ".ok").touch()
    return LITELLM_VENV / "bin" / "litellm"


def start_litellm(
    tmp: Path,
    up: int,
    procs: list[subprocess.Popen[bytes]],
    model: str = "openai/bench-model",
    timeout_s: float = 30,
) -> tuple[str, str]:
    """LiteLLM's proxy (one worker, core 1, no retries, ``timeout_s`` per request) in front of
    the upstream on port ``up``, serving it as ``bench-model`` through LiteLLM's ``model``
    (provider/name): (base URL, key)."""
    litellm = ensure_litellm()
    cfg = tmp / "litellm.yaml"
    entry = {
        "model_name": "bench-model",
        "litellm_params": {"model": model, "api_base": f"http://127.0.0.1:{up}/v1", "api_key": "x"},
    }
    cfg.write_text(
        json.dumps(
            {
                "model_list": [entry],
                "general_settings": {"master_key": "sk-bench"},
                "litellm_settings": {"num_retries": 0, "request_timeout": timeout_s},
            }
        )
    )
    port = free_port()
    procs.append(
        start(
            [str(litellm), "--config", str(cfg), "--port", str(port), "--num_workers", "1"],
            1,
            env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
            log=tmp / "litellm.log",
        )
    )
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return f"http://127.0.0.1:{port}/v1", "sk-bench"


PORTCULLIS = str(Path(PY).parent / "portcullis")


def gateway_config(
    tmp: Path,
    upstream_port: int,
    name: str,
    database_url: str | None,
    pii: bool = False,
    ner: bool = True,
) -> Path:
    """``ner`` False: the PII guard finds identifiers, contacts and numbers only (its patterns
    and checksums), not names and places."""
    cfg = {
        "data_dir": str(tmp / name),
        "database": {"url": database_url},
        "pii": {"enabled": pii, "ner": ner},
        "limits": {"requests_per_minute": 10_000_000, "tokens_per_minute": 0},
        "backends": [
            {
                "id": "bench",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "models": ["bench-model"],
                "operator": "openai",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "US",
                "max_retries": 0,
            }
        ],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(json.dumps(cfg))
    return path


def migrate_and_key(cfg: Path, env: dict[str, str] | None = None) -> str:
    """Migrate the gateway's database and create the benchmark's key; returns the key."""
    run_env = {**os.environ, **(env or {})}
    base = [PORTCULLIS, "-c", str(cfg)]
    subprocess.run([*base, "db", "upgrade"], check=True, capture_output=True, env=run_env)
    return subprocess.run(
        [*base, "keys", "create", "--user", "bench", "--jurisdiction", "US", "--sector", "private"],
        check=True,
        capture_output=True,
        text=True,
        env=run_env,
    ).stdout.strip()


def own_p50(db: Path, since: str, until: str) -> float | None:
    """The gateway's own part (its ``portcullis_gateway_seconds``: total minus upstream time),
    p50 in ms, from the completion records of requests that started between ``since`` and
    ``until`` (UTC, RFC 3339) in a SQLite-backed gateway's audit log."""
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT body FROM audit_log WHERE kind = 'complete' AND ts >= ? AND ts < ?",
            (since, until),
        ).fetchall()
    own = [json.loads(b)["latency_ms"].get("gateway") for (b,) in rows]
    own = [v for v in own if isinstance(v, int | float)]
    return statistics.median(own) if own else None


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--conc", default="1,16,64")
    ap.add_argument("--skip-litellm", action="store_true")
    ap.add_argument(
        "--pg",
        default=None,
        help="also run the gateway on this PostgreSQL URL (postgresql+asyncpg://...)",
    )
    args = ap.parse_args()
    concs = [int(c) for c in args.conc.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="pcs-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: list[dict[str, Any]] = []
    try:
        up_port = start_mock_upstream(procs)
        targets: list[tuple[str, str, str]] = [
            ("floor", f"http://127.0.0.1:{up_port}/v1/chat/completions", "")
        ]

        fw_port = free_port()
        procs.append(start([PY, str(HERE / "forwarder.py"), str(up_port), str(fw_port)], 1))
        wait_http(f"http://127.0.0.1:{fw_port}/v1/chat/completions", ok=(405,))
        targets.append(("forwarder", f"http://127.0.0.1:{fw_port}/v1/chat/completions", ""))

        variants = [("portcullis", None)] + ([("portcullis-pg", args.pg)] if args.pg else [])
        for name, db_url in variants:
            cfg = gateway_config(tmp, up_port, name, db_url)
            key = migrate_and_key(cfg)
            gw_port = free_port()
            procs.append(
                start(
                    [
                        PORTCULLIS,
                        "-c",
                        str(cfg),
                        "serve",
                        "--port",
                        str(gw_port),
                        "--no-migrate",
                        "--log-level",
                        "warning",
                    ],
                    1,
                    log=tmp / f"{name}.log",
                )
            )
            wait_http(f"http://127.0.0.1:{gw_port}/healthz")
            targets.append((name, f"http://127.0.0.1:{gw_port}/v1/chat/completions", key))

        if not args.skip_litellm:
            base, ll_key = start_litellm(tmp, up_port, procs)
            targets.append(("litellm", base + "/chat/completions", ll_key))

        for mode in ("json", "sse"):
            for conc in concs:
                for name, url, k in targets:
                    wrk(url, conc, args.warmup, mode == "sse", k, "bench-model")
                    since = utc_now()
                    r = wrk(url, conc, args.duration, mode == "sse", k, "bench-model")
                    r.update(target=name, mode=mode, conc=conc)
                    if name == "portcullis":
                        time.sleep(0.3)  # completion records are written after the answer
                        r["own_p50_ms"] = own_p50(tmp / name / "portcullis.db", since, utc_now())
                    results.append(r)
                    print(
                        f"{name:11} {mode:4} c={conc:<3} {r['rps']:9.0f} rps  p50 {r['p50_us'] / 1000:8.2f} ms  "
                        f"p99 {r['p99_us'] / 1000:8.2f} ms  errors {r['errors']}+{r['status_errors']}",
                        flush=True,
                    )
    finally:
        for p in reversed(procs):
            stop(p)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    (out_dir / f"core-{int(time.time())}.json").write_text(
        json.dumps({"commit": commit, "results": results}, indent=1)
    )
    print_table(results, commit)


def print_table(results: list[dict[str, Any]], commit: str) -> None:
    floor = {(r["mode"], r["conc"]): r for r in results if r["target"] == "floor"}
    lite = {(r["mode"], r["conc"]): r for r in results if r["target"] == "litellm"}
    fwd = {(r["mode"], r["conc"]): r for r in results if r["target"] == "forwarder"}
    print(f"\ncommit {commit}\n")
    print(
        "| target | mode | conc | RPS | p50 ms | p99 ms | p50 added over floor ms "
        "| gateway's own p50 ms | RPS vs forwarder | RPS vs LiteLLM |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        f = floor[(r["mode"], r["conc"])]
        ll = lite.get((r["mode"], r["conc"]))
        vs_l = f"{r['rps'] / ll['rps']:.1f}x" if ll else "-"
        fw = fwd.get((r["mode"], r["conc"]))
        vs_f = f"{r['rps'] / fw['rps']:.2f}" if fw else "-"
        own = r.get("own_p50_ms")
        own_s = f"{own:.2f}" if own is not None else "-"
        print(
            f"| {r['target']} | {r['mode']} | {r['conc']} | {r['rps']:,.0f} | {r['p50_us'] / 1000:.2f} | "
            f"{r['p99_us'] / 1000:.2f} | {(r['p50_us'] - f['p50_us']) / 1000:.2f} | {own_s} | {vs_f} | {vs_l} |"
        )


if __name__ == "__main__":
    main()
