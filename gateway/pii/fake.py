"""A deterministic fake detector for tests of the guard and of the gateway around it.

It finds the literal values it was given (``{"Alice Example": "PERSON"}``) and can be told to
fail or to be slow, so fail-closed paths can be exercised without the real model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from gateway.pii.contract import Finding

__all__ = ["FakeDetector"]


class FakeDetector:
    """Implements :class:`gateway.pii.contract.PiiDetector`."""

    def __init__(
        self,
        values: Mapping[str, str],
        *,
        fail: BaseException | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.values = dict(values)
        self.fail = fail
        self.delay_s = delay_s
        self.calls: list[list[str]] = []
        self.strict: list[bool] = []  # each call's strictness (the strict_pii obligation)

    async def analyze(
        self, texts: Sequence[str], entities: frozenset[str] | None, strict: bool = False
    ) -> list[list[Finding]]:
        self.calls.append(list(texts))
        self.strict.append(strict)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        out: list[list[Finding]] = []
        for text in texts:
            found: list[Finding] = []
            for value, etype in self.values.items():
                if entities is not None and etype not in entities:
                    continue
                i = text.find(value)
                while i >= 0:
                    found.append(Finding(etype, i, i + len(value), 1.0))
                    i = text.find(value, i + len(value))
            found.sort(key=lambda f: f.start)
            out.append(found)
        return out

    async def ready(self) -> bool:
        return self.fail is None

    async def close(self) -> None:
        return None
