"""The shape of one identifier recognizer: data plus a checksum function.

Recognizers are data, not classes with scanning loops: :mod:`gateway.pii.scanner` makes one pass
over a text, cuts candidate windows out of digit-bearing runs, and offers each window only to the
specs whose compact length and shape fit. That is the "one combined pattern pass".
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["IdSpec", "Strength", "stdnum_check"]


class Strength(enum.Enum):
    STRONG = "strong"  # checksum strong enough (or format distinctive enough) on its own
    WEAK = "weak"  # weak checksum (1 in 10 or 11 random numbers pass): dropped in code context
    CONTEXT = "context"  # reported only with a context word nearby


@dataclass(frozen=True, slots=True)
class IdSpec:
    entity: str
    jurisdiction: str
    lengths: frozenset[int]  # lengths of the compact (separator-free, upper-cased) value
    shape: re.Pattern[str]  # full match on the compact value
    check: Callable[[str], bool]  # on the compact value
    strength: Strength
    score: float
    context: tuple[str, ...] = ()
    raw_shape: re.Pattern[str] | None = None  # optional full match on the text as written
    regex: re.Pattern[str] | None = field(default=None)  # own regex instead of run windows


def stdnum_check(module: object) -> Callable[[str], bool]:
    """``module.is_valid`` from python-stdnum, guarded against its exceptions."""
    is_valid: Callable[[str], bool] = module.is_valid  # type: ignore[attr-defined]

    def check(value: str) -> bool:
        try:
            return bool(is_valid(value))
        except Exception:  # noqa: BLE001 - stdnum raises assorted errors on odd input
            return False

    return check
