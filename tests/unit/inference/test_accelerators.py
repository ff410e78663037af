"""Accelerator discovery and engine choice with faked torch and faked vendor plugins."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from inference.accelerators import best, discover
from inference.selection import VllmProbe, choose_engine

GIB = 1024**3


class FakeDeviceApi:
    def __init__(self, names: list[str], memory_gib: int = 64) -> None:
        self.names = names
        self.memory = memory_gib * GIB

    def is_available(self) -> bool:
        return bool(self.names)

    def device_count(self) -> int:
        return len(self.names)

    def get_device_name(self, i: int) -> str:
        return self.names[i]

    def get_device_properties(self, i: int) -> Any:
        return SimpleNamespace(total_memory=self.memory)


class BrokenApi(FakeDeviceApi):
    def device_count(self) -> int:
        raise RuntimeError("driver mismatch")


def fake_torch(**apis: Any) -> Any:
    hip = apis.pop("hip", None)
    return SimpleNamespace(version=SimpleNamespace(hip=hip), **apis)


def plugin(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def available(accs: list[Any]) -> dict[str, tuple[int, int]]:
    return {a.kind: (len(a.devices), a.memory_bytes // GIB) for a in accs if a.available}


@pytest.fixture(autouse=True)
def no_real_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torch_npu", "torch_musa", "torch_mlu"):
        monkeypatch.delitem(sys.modules, name, raising=False)


CASES = [
    (
        "nvidia_h100_x2",
        dict(cuda=FakeDeviceApi(["NVIDIA H100 80GB HBM3"] * 2, 80)),
        {},
        {"cuda": (2, 160)},
    ),
    (
        "amd_mi300x_is_rocm",
        dict(cuda=FakeDeviceApi(["AMD Instinct MI300X"], 192), hip="6.2"),
        {},
        {"rocm": (1, 192)},
    ),
    (
        "hygon_dcu_is_dcu",
        dict(cuda=FakeDeviceApi(["Hygon DCU K100_AI"], 64), hip="5.7"),
        {},
        {"dcu": (1, 64)},
    ),
    (
        "ascend_via_torch_npu",
        {},
        {"torch_npu": plugin("torch_npu", npu=FakeDeviceApi(["Ascend910B2"] * 8, 64))},
        {"npu": (8, 512)},
    ),
    (
        "moore_threads_via_torch_musa",
        dict(musa=FakeDeviceApi(["MTT S4000"] * 4, 48)),
        {"torch_musa": plugin("torch_musa")},
        {"musa": (4, 192)},
    ),
    (
        "intel_xpu_native",
        dict(xpu=FakeDeviceApi(["Intel Data Center GPU Max 1550"], 128)),
        {},
        {"xpu": (1, 128)},
    ),
    (
        "cambricon_via_torch_mlu",
        {},
        {"torch_mlu": plugin("torch_mlu", mlu=FakeDeviceApi(["MLU370-X8"] * 2, 48))},
        {"mlu": (2, 96)},
    ),
    ("nothing_but_cpu", {}, {}, {}),
]


@pytest.mark.parametrize(
    ("torch_apis", "plugins", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_discovers_each_vendor_from_faked_modules(
    monkeypatch: pytest.MonkeyPatch,
    torch_apis: dict[str, Any],
    plugins: dict[str, ModuleType],
    expected: dict[str, tuple[int, int]],
) -> None:
    for name, module in plugins.items():
        monkeypatch.setitem(sys.modules, name, module)
    accs = discover(torch_module=fake_torch(**torch_apis))
    found = available(accs)
    assert found.pop("cpu")[0] == 1  # the CPU is always there
    assert found == expected
    assert [a.kind for a in accs] == ["cuda", "rocm", "dcu", "npu", "musa", "xpu", "mlu", "cpu"]


def test_missing_vendor_plugins_are_reported_not_raised() -> None:
    accs = {a.kind: a for a in discover(torch_module=fake_torch())}
    for kind, module in (("npu", "torch_npu"), ("musa", "torch_musa"), ("mlu", "torch_mlu")):
        assert not accs[kind].available
        assert accs[kind].note == f"plugin {module} not installed"


def test_a_plugin_that_crashes_on_import_is_reported() -> None:
    def importer(name: str) -> ModuleType:
        if name == "torch_npu":
            raise RuntimeError("CANN not found")
        return importlib.import_module(name)

    accs = {a.kind: a for a in discover(torch_module=fake_torch(), importer=importer)}
    assert accs["npu"].note == "plugin torch_npu failed: RuntimeError"
    assert accs["cpu"].available


def test_a_driver_error_is_reported_as_unavailable() -> None:
    accs = {a.kind: a for a in discover(torch_module=fake_torch(cuda=BrokenApi(["x"])))}
    assert not accs["cuda"].available
    assert accs["cuda"].note == "device query failed: RuntimeError"


def test_without_torch_only_the_cpu_is_found() -> None:
    def importer(name: str) -> ModuleType:
        raise ModuleNotFoundError(name)

    accs = discover(importer=importer)
    assert [a.kind for a in accs if a.available] == ["cpu"]
    assert all(a.note == "torch not installed" for a in accs if a.kind != "cpu")


def test_best_prefers_accelerators_and_honours_a_requested_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        sys.modules, "torch_npu", plugin("torch_npu", npu=FakeDeviceApi(["Ascend910B"], 64))
    )
    accs = discover(torch_module=fake_torch())
    assert best(accs).kind == "npu"
    assert best(accs, "cpu").kind == "cpu"
    with pytest.raises(LookupError, match="not usable"):
        best(accs, "cuda:1")
    with pytest.raises(LookupError, match="unknown device kind"):
        best(accs, "tpu")


def test_real_discovery_on_this_machine_finds_the_cpu() -> None:
    accs = discover()
    assert accs[-1].kind == "cpu" and accs[-1].available
    assert accs[-1].memory_bytes > 0


ENGINE_CASES = [
    ("cuda_with_vllm", "cuda", {"vllm"}, "auto", "vllm"),
    ("cuda_without_vllm", "cuda", set(), "auto", "transformers"),
    ("ascend_needs_vllm_ascend", "npu", {"vllm"}, "auto", "transformers"),
    ("ascend_with_plugin", "npu", {"vllm", "vllm_ascend"}, "auto", "vllm"),
    ("musa_with_vllm_musa", "musa", {"vllm", "vllm_musa"}, "auto", "vllm"),
    ("mlu_has_no_vllm", "mlu", {"vllm"}, "auto", "transformers"),
    ("cpu_with_vllm_cpu", "cpu", {"vllm"}, "auto", "vllm"),
    ("forced_transformers", "cuda", {"vllm"}, "transformers", "transformers"),
]


@pytest.mark.parametrize(
    ("kind", "modules", "requested", "engine"),
    [c[1:] for c in ENGINE_CASES],
    ids=[c[0] for c in ENGINE_CASES],
)
def test_engine_choice(kind: str, modules: set[str], requested: str, engine: str) -> None:
    from inference.accelerators import Accelerator, Device

    acc = Accelerator(kind, "x", True, (Device(0, "d", GIB),), "")
    choice = choose_engine(requested, acc, VllmProbe(None, frozenset(modules)))
    assert choice.engine == engine
    assert choice.reason


def test_asking_for_vllm_where_it_is_missing_says_what_is_missing() -> None:
    from inference.accelerators import Accelerator

    acc = Accelerator("npu", "Huawei Ascend", True, (), "")
    with pytest.raises(ValueError, match="vllm_ascend not installed"):
        choose_engine("vllm", acc, VllmProbe(None, frozenset({"vllm"})))
