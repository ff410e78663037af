"""The runtime CLI: doctor's report, serve's engine choice and the vLLM command it launches."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from inference.cli import runtime


def tiny_config(tmp_path: Path) -> Path:
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["DeepseekV3ForCausalLM"],
                "hidden_size": 64,
                "num_hidden_layers": 2,
                "max_position_embeddings": 4096,
                "torch_dtype": "bfloat16",
            }
        )
    )
    (model / "model.safetensors").write_bytes(b"\0" * 1000)
    return model


def fake_vllm_python(tmp_path: Path) -> tuple[Path, Path]:
    """An 'interpreter' whose vLLM probe answers `vllm` and whose launch records its argv."""
    record = tmp_path / "argv.txt"
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo vllm; exit 0; fi\n'
        f'printf "%s\\n" "$@" > {record}\n'
        'env | grep -E "^(HF_HUB_OFFLINE|VLLM_CPU_KVCACHE_SPACE)=" >> ' + str(record) + "\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, record


def test_doctor_json_reports_the_cpu_and_the_fallback_engine(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        runtime, ["doctor", "--json", "--model", str(tiny_config(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    kinds = {a["kind"]: a for a in report["accelerators"]}
    assert kinds["cpu"]["available"] and kinds["npu"]["note"] == "plugin torch_npu not installed"
    assert report["selected"]["engine"] in ("transformers", "vllm")
    assert report["model"]["card"] == "custom" and report["model"]["tensor_parallel_size"] == 1


def test_doctor_with_vllm_python_chooses_vllm_and_says_why(tmp_path: Path) -> None:
    python, _ = fake_vllm_python(tmp_path)
    result = CliRunner().invoke(runtime, ["doctor", "--json", "--vllm-python", str(python)])
    report = json.loads(result.output)
    assert report["selected"]["engine"] == "vllm"
    assert report["selected"]["reason"] == "vLLM installed and supports cpu"


def test_serve_with_vllm_launches_its_openai_server_with_cpu_workarounds(tmp_path: Path) -> None:
    python, record = fake_vllm_python(tmp_path)
    model = tiny_config(tmp_path)
    result = CliRunner().invoke(
        runtime,
        [
            "serve",
            "--model",
            str(model),
            "--engine",
            "vllm",
            "--vllm-python",
            str(python),
            "--served-model-name",
            "tiny-deepseek",
            "--port",
            "9123",
            "--vllm-arg=--load-format=dummy",
        ],
    )
    assert result.exit_code == 0, result.output
    argv = record.read_text().splitlines()
    assert argv[:2] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(argv)
    assert f"--model {model}" in joined and "--served-model-name tiny-deepseek" in joined
    assert "--port 9123" in joined and "--dtype bfloat16" in joined
    assert "--max-model-len 512" in joined and "--load-format=dummy" in joined
    assert "HF_HUB_OFFLINE=1" in argv and "VLLM_CPU_KVCACHE_SPACE=1" in argv


def test_serve_refuses_vllm_when_it_is_not_installed(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        runtime,
        [
            "serve",
            "--model",
            str(tiny_config(tmp_path)),
            "--engine",
            "vllm",
            "--vllm-python",
            str(tmp_path / "no-such-python"),
        ],
    )
    assert result.exit_code == 1
    assert "vllm not installed" in result.output


def test_serve_refuses_a_checkpoint_that_cannot_fit(tmp_path: Path) -> None:
    model = tmp_path / "DeepSeek-R1"
    model.mkdir()
    (model / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["DeepseekV3ForCausalLM"],
                "hidden_size": 7168,
                "num_hidden_layers": 61,
            }
        )
    )
    result = CliRunner().invoke(runtime, ["serve", "--model", str(model), "--device", "cpu"])
    assert result.exit_code == 1
    assert "cannot be served here" in result.output and "DeepSeek-R1 needs about" in result.output
