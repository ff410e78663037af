"""Running the pack's Rego tests with the embedded engine (``portcullis policy test``).

A test is a rule named ``test_*`` in a ``*_test.rego`` module; it passes when it evaluates to
``true``. The shipped pack's tests run against the pack alone; each overlay's tests run against
the pack plus that overlay, so an overlay cannot break the pack's tests and vice versa.
Coverage is regorus's line coverage of the decision modules (tests excluded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.policy.bundle import Bundle, load_bundle
from gateway.policy.embedded import prepare_engine

__all__ = ["TestOutcome", "TestReport", "run_tests"]

_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_TEST = re.compile(r"^(test_[A-Za-z0-9_]+)\b", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TestOutcome:
    module: str
    name: str
    passed: bool
    detail: str = ""


@dataclass(slots=True)
class TestReport:
    outcomes: list[TestOutcome] = field(default_factory=list)
    covered: dict[str, set[int]] = field(default_factory=dict)
    not_covered: dict[str, set[int]] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(not o.passed for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and bool(self.outcomes)

    def coverage(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for path in sorted(set(self.covered) | set(self.not_covered)):
            cov = self.covered.get(path, set())
            miss = self.not_covered.get(path, set()) - cov
            total = len(cov) + len(miss)
            out[path] = 100.0 * len(cov) / total if total else 100.0
        return out

    def total_coverage(self) -> float:
        cov = sum(len(v) for v in self.covered.values())
        miss = sum(
            len(self.not_covered.get(p, set()) - self.covered.get(p, set()))
            for p in self.not_covered
        )
        return 100.0 * cov / (cov + miss) if cov + miss else 100.0


_HELPERS = "pack/lib/lib_test.rego"  # the pack's test helpers (portcullis_test.lib)


def _run_group(
    bundle: Bundle,
    tests: Sequence[tuple[str, str]],
    report: TestReport,
    helpers: Sequence[tuple[str, str]] = (),
) -> None:
    engine: Any = prepare_engine(bundle)
    for name, text in (*helpers, *tests):
        engine.add_policy(name, text)
    engine.set_enable_coverage(True)
    engine.set_input_json("{}")
    for name, text in tests:
        m = _PACKAGE.search(text)
        if not m:
            report.outcomes.append(TestOutcome(name, "-", False, "no package"))
            continue
        for test in dict.fromkeys(_TEST.findall(text)):
            try:
                value = json.loads(engine.eval_rule_as_json(f"data.{m.group(1)}.{test}"))
            except Exception as exc:  # an error in a test is a failure, reported by location  # noqa: BLE001 (fail closed)
                first = str(exc).strip().splitlines()
                report.outcomes.append(TestOutcome(name, test, False, " ".join(first[:4])))
                continue
            report.outcomes.append(
                TestOutcome(name, test, value is True, "" if value is True else f"result {value!r}")
            )
    cov = json.loads(engine.get_coverage_report_as_json())
    test_names = {n for n, _ in (*helpers, *tests)}
    for f in cov.get("files", []):
        path = f["path"]
        if path in test_names or path.endswith("_test.rego"):
            continue
        report.covered.setdefault(path, set()).update(f.get("covered", []))
        report.not_covered.setdefault(path, set()).update(f.get("not_covered", []))


def run_tests(bundle_dir: Path | None = None, overlays: Sequence[Path] = ()) -> TestReport:
    report = TestReport()
    pack = load_bundle(bundle_dir, ())
    _run_group(pack, pack.tests, report)
    for overlay in overlays:
        with_overlay = load_bundle(bundle_dir, (overlay,))
        own = [(n, t) for n, t in with_overlay.tests if n.startswith("overlay/")]
        helpers = [(n, t) for n, t in with_overlay.tests if n == _HELPERS]
        if own:
            _run_group(with_overlay, own, report, helpers)
    return report
