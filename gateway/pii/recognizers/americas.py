"""United States, Canada, and payment cards (issued everywhere, Luhn-checked)."""

from __future__ import annotations

import re

from stdnum import luhn
from stdnum.ca import sin
from stdnum.us import itin, ssn

from gateway.pii.recognizers.base import IdSpec, Strength, stdnum_check

__all__ = ["SPECS"]

_SSN_CONTEXT = ("ssn", "social security", "ssa")

SPECS: tuple[IdSpec, ...] = (
    # No checksum: a 3-2-4 layout with one consistent separator stands in for a context word.
    IdSpec("US_SSN", "US", frozenset({9}), re.compile(r"[0-8]\d{8}"), stdnum_check(ssn),
           Strength.CONTEXT, 0.6, _SSN_CONTEXT, raw_shape=re.compile(r"\d{3}([- ])\d{2}\1\d{4}")),
    IdSpec("US_ITIN", "US", frozenset({9}), re.compile(r"9\d{8}"), stdnum_check(itin),
           Strength.CONTEXT, 0.6, ("itin", "taxpayer identification", *_SSN_CONTEXT),
           raw_shape=re.compile(r"9\d{2}([- ])\d{2}\1\d{4}")),
    IdSpec("CA_SIN", "CA", frozenset({9}), re.compile(r"\d{9}"), stdnum_check(sin),
           Strength.WEAK, 0.45, ("sin", "social insurance"),
           raw_shape=re.compile(r"\d{3}([- ])\d{3}\1\d{3}")),
    IdSpec("CREDIT_CARD", "*", frozenset(range(13, 20)), re.compile(r"[3-6]\d{12,18}"),
           stdnum_check(luhn), Strength.WEAK, 0.6,
           ("card", "visa", "mastercard", "amex", "credit", "debit", "cc")),
)  # fmt: skip
