"""Start the real gateway (`portcullis serve`, embedded defaults, policy and PII guard on) in
front of one runtime, for benchmarks. Returns the process, its /v1 URL and an API key."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from inference.catalog import backend_entry

PORTCULLIS = [sys.executable, "-c", "from gateway.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure_gateway(
    runtime_url: str,
    served_model: str,
    work: Path,
    port: int,
    env: dict[str, str],
    *,
    pii_ner: bool = True,
) -> tuple[list[str], str]:
    """Write a gateway config with the runtime as its one backend, migrate, create a key.
    ``pii_ner=False``: the PII guard without names and places (no spaCy model needed).

    Returns the CLI prefix (``portcullis --config FILE``) and the API key.
    """
    work.mkdir(parents=True, exist_ok=True)
    entry = backend_entry(runtime_url, "AU", "AU-NSW", "deepseek-chat", served_model=served_model)
    entry["timeouts"] = {"connect_s": 5, "first_byte_s": 300, "idle_s": 120, "total_s": 1800}
    config = {
        "data_dir": str(work),
        "server": {"host": "127.0.0.1", "port": port},
        "limits": {"requests_per_minute": 1000000, "tokens_per_minute": 0},
        "backends": [entry],
    }
    if not pii_ner:
        config["pii"] = {"ner": False}
    cfg = work / "gateway.yaml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    cli = [*PORTCULLIS, "--config", str(cfg)]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    created = subprocess.run(
        [
            *cli,
            "keys",
            "create",
            "--user",
            "bench",
            "--jurisdiction",
            "AU-NSW",
            "--sector",
            "private",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return cli, created.stdout.strip().splitlines()[-1]


def start_gateway(
    runtime_url: str, served_model: str, work: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""}
    cli, key = configure_gateway(runtime_url, served_model, work, port, env)
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc, f"http://127.0.0.1:{port}/v1", key
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("gateway did not start")
