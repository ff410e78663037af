"""Model cards for the DeepSeek family, and the fit check made when the server starts.

A card says what a checkpoint is (total/active parameters, native dtype, context) and how to
serve it; :func:`recommend` turns a card plus the accelerator found into engine arguments
(tensor parallel size, dtype, quantisation, maximum context) or a :class:`DoesNotFit` error that
says what is needed and what was found.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CARDS", "DoesNotFit", "ModelCard", "Recommendation", "card_for", "recommend"]

GIB = 1024**3
_BYTES = {"fp8": 1, "int8": 1, "w8a8": 1, "int4": 0.5, "awq": 0.5, "bf16": 2, "fp16": 2, "fp32": 4}
# Devices whose torch/vLLM kernels run fp8 weights natively.
_FP8_KINDS = frozenset({"cuda"})
_USABLE = 0.90  # vLLM's default gpu_memory_utilization
_KV_SHARE = 0.10  # at least this much of the usable memory left for the KV cache


class DoesNotFit(ValueError):
    """The checkpoint cannot be served on the devices found; the message says why."""


@dataclass(frozen=True, slots=True)
class ModelCard:
    id: str
    title: str
    architecture: str
    hidden_size: int
    num_layers: int
    params_b: float  # total parameters, billions
    active_b: float  # active per token (MoE), billions
    native_dtype: str
    max_context: int
    reasoning: bool  # emits <think> ... </think>


CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        "deepseek-r1",
        "DeepSeek-R1",
        "DeepseekV3ForCausalLM",
        7168,
        61,
        671,
        37,
        "fp8",
        163840,
        True,
    ),
    ModelCard(
        "deepseek-v3",
        "DeepSeek-V3",
        "DeepseekV3ForCausalLM",
        7168,
        61,
        671,
        37,
        "fp8",
        163840,
        False,
    ),
    ModelCard(
        "deepseek-v2-lite",
        "DeepSeek-V2-Lite",
        "DeepseekV2ForCausalLM",
        2048,
        27,
        15.7,
        2.4,
        "bf16",
        163840,
        False,
    ),
    ModelCard(
        "r1-distill-qwen-1.5b",
        "DeepSeek-R1-Distill-Qwen-1.5B",
        "Qwen2ForCausalLM",
        1536,
        28,
        1.78,
        1.78,
        "bf16",
        131072,
        True,
    ),
    ModelCard(
        "r1-distill-qwen-7b",
        "DeepSeek-R1-Distill-Qwen-7B",
        "Qwen2ForCausalLM",
        3584,
        28,
        7.62,
        7.62,
        "bf16",
        131072,
        True,
    ),
    ModelCard(
        "r1-distill-qwen-14b",
        "DeepSeek-R1-Distill-Qwen-14B",
        "Qwen2ForCausalLM",
        5120,
        48,
        14.8,
        14.8,
        "bf16",
        131072,
        True,
    ),
    ModelCard(
        "r1-distill-qwen-32b",
        "DeepSeek-R1-Distill-Qwen-32B",
        "Qwen2ForCausalLM",
        5120,
        64,
        32.8,
        32.8,
        "bf16",
        131072,
        True,
    ),
    ModelCard(
        "r1-distill-llama-8b",
        "DeepSeek-R1-Distill-Llama-8B",
        "LlamaForCausalLM",
        4096,
        32,
        8.03,
        8.03,
        "bf16",
        131072,
        True,
    ),
    ModelCard(
        "r1-distill-llama-70b",
        "DeepSeek-R1-Distill-Llama-70B",
        "LlamaForCausalLM",
        8192,
        80,
        70.6,
        70.6,
        "bf16",
        131072,
        True,
    ),
)


@dataclass(frozen=True, slots=True)
class Recommendation:
    card: ModelCard
    tensor_parallel_size: int
    dtype: str  # what vLLM's --dtype gets: bfloat16 / float16 / float32 / auto
    quantization: str | None
    max_model_len: int
    weight_bytes: int
    memory_bytes: int  # usable memory across the tensor-parallel devices
    notes: tuple[str, ...]

    def vllm_args(self) -> list[str]:
        args = [
            "--tensor-parallel-size",
            str(self.tensor_parallel_size),
            "--dtype",
            self.dtype,
            "--max-model-len",
            str(self.max_model_len),
        ]
        if self.quantization:
            args += ["--quantization", self.quantization]
        return args


def _generic(config: dict[str, Any], checkpoint_bytes: int) -> ModelCard:
    """A checkpoint no card names (e.g. `make-tiny`'s): sized from its files."""
    arch = (config.get("architectures") or ["unknown"])[0]
    dtype = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(
        str(config.get("torch_dtype") or config.get("dtype")), "bf16"
    )
    params = checkpoint_bytes / _BYTES[dtype] / 1e9
    return ModelCard(
        "custom",
        f"custom {arch}",
        arch,
        int(config.get("hidden_size", 0)),
        int(config.get("num_hidden_layers", 0)),
        params,
        params,
        dtype,
        int(config.get("max_position_embeddings", 4096)),
        False,
    )


def checkpoint_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) or sum(
        p.stat().st_size for p in model_dir.glob("*.bin")
    )


def card_for(model_dir: Path) -> ModelCard:
    """The card matching a checkpoint's config.json (architecture, width, depth), else a generic
    card sized from the weight files."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json: not a checkpoint directory")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    arch = (config.get("architectures") or [""])[0]
    matches = [
        c
        for c in CARDS
        if c.architecture == arch
        and c.hidden_size == config.get("hidden_size")
        and c.num_layers == config.get("num_hidden_layers")
    ]
    if matches:
        wants_r1 = "r1" in model_dir.name.lower()
        return next((c for c in matches if c.reasoning == wants_r1), matches[0])
    return _generic(config, checkpoint_bytes(model_dir))


def recommend(
    card: ModelCard, kind: str, device_count: int, memory_per_device: int
) -> Recommendation:
    """Engine arguments for ``card`` on ``device_count`` devices of ``kind``; raises DoesNotFit."""
    notes: list[str] = []
    weight_dtype = card.native_dtype
    quantization: str | None = None
    if weight_dtype == "fp8" and kind not in _FP8_KINDS:
        if kind == "npu":
            weight_dtype, quantization = "w8a8", "ascend"
            notes.append(
                "Ascend: serve a W8A8-quantised checkpoint (vllm-ascend --quantization ascend)"
            )
        else:
            weight_dtype = "bf16"
            notes.append(
                f"{kind} has no native fp8 kernels: weights dequantised to bf16 (2x memory)"
            )
    elif weight_dtype == "fp8":
        quantization = "fp8"
    if kind == "cpu" and weight_dtype in ("bf16", "fp16") and card.params_b < 1:
        weight_dtype = "fp32"
        notes.append("CPU: small model run in float32 (bf16 matmuls are slow on many CPUs)")
    weight_bytes = math.ceil(card.params_b * 1e9 * _BYTES[weight_dtype])
    usable_one = int(memory_per_device * (1.0 if kind == "cpu" else _USABLE))
    need = weight_bytes / (1 - _KV_SHARE)
    tp = 1
    while tp < device_count and tp * usable_one < need:
        tp *= 2
    tp = min(tp, device_count) if kind != "cpu" else 1
    usable = tp * usable_one
    if usable < need:
        raise DoesNotFit(
            f"{card.title} needs about {need / GIB:.1f} GiB ({weight_bytes / GIB:.1f} GiB of "
            f"{weight_dtype} weights plus KV cache) but {device_count} {kind} device(s) give "
            f"{device_count * usable_one / GIB:.1f} GiB usable; use more devices, a quantised "
            f"checkpoint, or a smaller model (e.g. an R1 distill)"
        )
    kv_bytes = usable - weight_bytes
    # Context that the left-over memory sustains, conservatively (1 MiB of KV per 16 tokens
    # per billion active parameters), capped by the card.
    per_token = max(card.active_b, 0.01) * 1024 * 1024 / 16
    context = min(card.max_context, max(512, int(kv_bytes / per_token) // 512 * 512))
    if kind == "cpu":
        context = min(context, 4096)
    dtype = {"fp32": "float32", "fp16": "float16"}.get(weight_dtype, "bfloat16")
    if quantization == "fp8":
        dtype = "auto"
    return Recommendation(
        card, tp, dtype, quantization, context, weight_bytes, usable, tuple(notes)
    )
