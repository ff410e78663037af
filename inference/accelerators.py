"""Accelerator discovery: what this machine can run a model on.

Kinds: NVIDIA CUDA, AMD ROCm and Hygon DCU (both HIP builds of torch), Huawei Ascend
(``torch_npu``), Moore Threads (``torch_musa``), Intel XPU (native in torch), Cambricon MLU
(``torch_mlu``) and the CPU. Vendor plugins are optional imports: a missing plugin is reported
as a note, never raised. ``discover`` takes the torch module and the importer as arguments so
tests can fake any vendor (``sys.modules`` injection) on a CPU-only machine.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

__all__ = ["KINDS", "Accelerator", "Device", "best", "discover"]

# (kind, vendor, plugin module or None, torch attribute holding the device API)
KINDS: tuple[tuple[str, str, str | None, str], ...] = (
    ("cuda", "NVIDIA", None, "cuda"),
    ("rocm", "AMD", None, "cuda"),
    ("dcu", "Hygon", None, "cuda"),
    ("npu", "Huawei Ascend", "torch_npu", "npu"),
    ("musa", "Moore Threads", "torch_musa", "musa"),
    ("xpu", "Intel", None, "xpu"),
    ("mlu", "Cambricon", "torch_mlu", "mlu"),
)
_DCU_MARKERS = ("dcu", "hygon")


@dataclass(frozen=True, slots=True)
class Device:
    index: int
    name: str
    memory_bytes: int | None


@dataclass(frozen=True, slots=True)
class Accelerator:
    kind: str  # cuda, rocm, dcu, npu, musa, xpu, mlu, cpu
    vendor: str
    available: bool
    devices: tuple[Device, ...]
    note: str  # why unavailable, or what was found

    @property
    def memory_bytes(self) -> int:
        return sum(d.memory_bytes or 0 for d in self.devices)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["devices"] = [asdict(d) for d in self.devices]
        return data


Importer = Callable[[str], ModuleType]


def _devices(api: Any) -> tuple[Device, ...]:
    found = []
    for i in range(int(api.device_count())):
        name = str(api.get_device_name(i))
        memory: int | None
        try:
            memory = int(api.get_device_properties(i).total_memory)
        except (AttributeError, RuntimeError, TypeError):
            memory = None
        found.append(Device(i, name, memory))
    return tuple(found)


def _cuda_family(torch: Any, devices: tuple[Device, ...]) -> str:
    if getattr(getattr(torch, "version", None), "hip", None):
        names = " ".join(d.name for d in devices).lower()
        return "dcu" if any(m in names for m in _DCU_MARKERS) else "rocm"
    return "cuda"


def _probe(
    torch: Any, kind: str, vendor: str, plugin: str | None, attr: str, importer: Importer
) -> Accelerator:
    module: ModuleType | None = None
    if plugin is not None:
        try:
            module = importer(plugin)
        except ImportError:
            return Accelerator(kind, vendor, False, (), f"plugin {plugin} not installed")
        except Exception as exc:  # noqa: BLE001 - a broken vendor plugin must not stop discovery
            return Accelerator(
                kind, vendor, False, (), f"plugin {plugin} failed: {type(exc).__name__}"
            )
    api = getattr(torch, attr, None) or (getattr(module, attr, None) if module else None)
    if api is None:
        return Accelerator(kind, vendor, False, (), f"torch has no {attr} backend")
    try:
        if not api.is_available():
            return Accelerator(kind, vendor, False, (), "no device visible")
        devices = _devices(api)
    except Exception as exc:  # noqa: BLE001 - driver errors are reported, not raised
        return Accelerator(kind, vendor, False, (), f"device query failed: {type(exc).__name__}")
    if attr == "cuda" and _cuda_family(torch, devices) != kind:
        return Accelerator(kind, vendor, False, (), "no device visible")
    where = f" via {plugin}" if plugin else ""
    return Accelerator(kind, vendor, True, devices, f"{len(devices)} device(s){where}")


def _cpu() -> Accelerator:
    memory: int | None
    try:
        import psutil

        memory = int(psutil.virtual_memory().available)
    except ImportError:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    cores = os.cpu_count() or 1
    return Accelerator(
        "cpu", "CPU", True, (Device(0, f"{cores} cores", memory),), "always available"
    )


def discover(
    torch_module: Any | None = None, importer: Importer = importlib.import_module
) -> list[Accelerator]:
    """Every kind, in order of preference, with the CPU last (always available)."""
    torch = torch_module
    if torch is None:
        try:
            torch = importer("torch")
        except ImportError:
            missing = [Accelerator(k, v, False, (), "torch not installed") for k, v, _, _ in KINDS]
            return [*missing, _cpu()]
    found = [
        _probe(torch, kind, vendor, plugin, attr, importer) for kind, vendor, plugin, attr in KINDS
    ]
    return [*found, _cpu()]


def best(accelerators: list[Accelerator], device: str | None = None) -> Accelerator:
    """The accelerator to use: the requested kind (``npu``, ``cuda:1`` names ``cuda``), else the
    first available in order of preference."""
    if device:
        kind = device.split(":", 1)[0]
        for acc in accelerators:
            if acc.kind == kind or (
                kind == "cuda" and acc.kind in ("rocm", "dcu") and acc.available
            ):
                if not acc.available:
                    raise LookupError(f"device {device!r} requested but not usable: {acc.note}")
                return acc
        raise LookupError(f"unknown device kind {kind!r}")
    return next(a for a in accelerators if a.available)
