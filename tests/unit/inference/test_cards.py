"""Model cards: matching checkpoints, engine arguments per accelerator, and refusing what won't fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.cards import CARDS, DoesNotFit, card_for, recommend

GIB = 1024**3
CARD = {c.id: c for c in CARDS}


def checkpoint(tmp_path: Path, name: str, arch: str, hidden: int, layers: int) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps({"architectures": [arch], "hidden_size": hidden, "num_hidden_layers": layers})
    )
    return d


@pytest.mark.parametrize(
    ("name", "arch", "hidden", "layers", "card"),
    [
        ("DeepSeek-R1", "DeepseekV3ForCausalLM", 7168, 61, "deepseek-r1"),
        ("DeepSeek-V3-0324", "DeepseekV3ForCausalLM", 7168, 61, "deepseek-v3"),
        ("DeepSeek-V2-Lite-Chat", "DeepseekV2ForCausalLM", 2048, 27, "deepseek-v2-lite"),
        ("DeepSeek-R1-Distill-Qwen-7B", "Qwen2ForCausalLM", 3584, 28, "r1-distill-qwen-7b"),
        ("DeepSeek-R1-Distill-Qwen-32B", "Qwen2ForCausalLM", 5120, 64, "r1-distill-qwen-32b"),
        ("DeepSeek-R1-Distill-Llama-70B", "LlamaForCausalLM", 8192, 80, "r1-distill-llama-70b"),
    ],
)
def test_card_matches_checkpoint_config(
    tmp_path: Path, name: str, arch: str, hidden: int, layers: int, card: str
) -> None:
    assert card_for(checkpoint(tmp_path, name, arch, hidden, layers)).id == card


def test_unknown_checkpoint_gets_a_card_sized_from_its_files(tmp_path: Path) -> None:
    d = checkpoint(tmp_path, "tiny", "DeepseekV3ForCausalLM", 64, 2)
    (d / "model.safetensors").write_bytes(b"\0" * 2_000_000)
    card = card_for(d)
    assert card.id == "custom"
    assert card.params_b == pytest.approx(0.001)  # 2 MB of bf16


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        card_for(tmp_path)


@pytest.mark.parametrize(
    ("card", "kind", "count", "gib", "tp", "dtype", "quant"),
    [
        ("deepseek-r1", "cuda", 8, 141, 8, "auto", "fp8"),  # 8x H200
        ("deepseek-v3", "npu", 16, 64, 16, "bfloat16", "ascend"),  # 2 nodes of Ascend 910B, W8A8
        ("deepseek-v2-lite", "cuda", 1, 141, 1, "bfloat16", None),
        ("deepseek-v2-lite", "cuda", 4, 24, 2, "bfloat16", None),  # 4x 24 GB: needs TP 2
        ("r1-distill-qwen-7b", "musa", 1, 48, 1, "bfloat16", None),
        ("r1-distill-llama-70b", "cuda", 4, 80, 4, "bfloat16", None),
        ("r1-distill-qwen-1.5b", "cpu", 1, 32, 1, "bfloat16", None),
    ],
)
def test_recommends_engine_arguments(
    card: str, kind: str, count: int, gib: int, tp: int, dtype: str, quant: str | None
) -> None:
    rec = recommend(CARD[card], kind, count, gib * GIB)
    assert (rec.tensor_parallel_size, rec.dtype, rec.quantization) == (tp, dtype, quant)
    assert 512 <= rec.max_model_len <= CARD[card].max_context
    args = rec.vllm_args()
    assert args[args.index("--tensor-parallel-size") + 1] == str(tp)


@pytest.mark.parametrize(
    ("card", "kind", "count", "gib"),
    [
        ("deepseek-r1", "cuda", 8, 80),  # 671 GB of fp8 on 8x 80 GB: no
        ("deepseek-v3", "rocm", 8, 192),  # no fp8 kernels: 1.3 TB of bf16
        ("r1-distill-llama-70b", "cuda", 1, 80),
        ("r1-distill-qwen-32b", "cpu", 1, 16),
    ],
)
def test_refuses_a_checkpoint_that_cannot_fit_and_says_why(
    card: str, kind: str, count: int, gib: int
) -> None:
    with pytest.raises(DoesNotFit) as exc:
        recommend(CARD[card], kind, count, gib * GIB)
    message = str(exc.value)
    assert CARD[card].title in message and "GiB" in message and "quantised" in message


def test_cpu_context_is_capped_for_the_fallback_engine() -> None:
    rec = recommend(CARD["r1-distill-qwen-1.5b"], "cpu", 1, 64 * GIB)
    assert rec.max_model_len <= 4096
