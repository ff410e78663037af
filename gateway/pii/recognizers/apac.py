# ruff: noqa: RUF002 - identifiers and context words in their own scripts
"""Australia, Singapore, India."""

from __future__ import annotations

import re

from stdnum.au import abn, acn, tfn
from stdnum.in_ import aadhaar, pan

from gateway.pii.recognizers.base import IdSpec, Strength, stdnum_check

__all__ = ["SPECS", "au_medicare_valid", "sg_nric_valid"]


def au_medicare_valid(value: str) -> bool:
    """10 digits (11 with the individual reference number); stdnum has no module for it."""
    if len(value) not in (10, 11) or not value.isdigit() or value[0] not in "23456":
        return False
    s = sum(int(d) * w for d, w in zip(value[:8], (1, 3, 7, 9, 1, 3, 7, 9), strict=True))
    return s % 10 == int(value[8])


def sg_nric_valid(value: str) -> bool:
    """Singapore NRIC/FIN with the M series (P = 11 − R); stdnum has no module for it."""
    if len(value) != 9 or value[0] not in "STFGM" or not value[1:8].isdigit():
        return False
    s = sum(int(d) * w for d, w in zip(value[1:8], (2, 7, 6, 5, 4, 3, 2), strict=True))
    s += {"T": 4, "G": 4, "M": 3}.get(value[0], 0)
    r = s % 11
    if value[0] in "ST":
        return "JZIHGFEDCBA"[r] == value[8]
    if value[0] in "FG":
        return "XWUTRQPNMLK"[r] == value[8]
    return "KLJNPQRTUWX"[10 - r] == value[8]


SPECS: tuple[IdSpec, ...] = (
    IdSpec("AU_TFN", "AU", frozenset({9}), re.compile(r"\d{9}"), stdnum_check(tfn),
           Strength.WEAK, 0.5, ("tfn", "tax file"), raw_shape=re.compile(r"\d{3} \d{3} \d{3}")),
    IdSpec("AU_ABN", "AU", frozenset({11}), re.compile(r"\d{11}"), stdnum_check(abn),
           Strength.WEAK, 0.55, ("abn", "australian business"),
           raw_shape=re.compile(r"\d{2} \d{3} \d{3} \d{3}")),
    IdSpec("AU_ACN", "AU", frozenset({9}), re.compile(r"\d{9}"), stdnum_check(acn),
           Strength.CONTEXT, 0.5, ("acn", "australian company", "company number")),
    IdSpec("AU_MEDICARE", "AU", frozenset({10, 11}), re.compile(r"[2-6]\d{9,10}"),
           au_medicare_valid, Strength.WEAK, 0.5, ("medicare",),
           raw_shape=re.compile(r"\d{4} \d{5} \d( \d)?")),
    IdSpec("SG_NRIC_FIN", "SG", frozenset({9}), re.compile(r"[STFGM]\d{7}[A-Z]"), sg_nric_valid,
           Strength.STRONG, 0.9, ("nric", "fin", "identity card")),
    IdSpec("IN_AADHAAR", "IN", frozenset({12}), re.compile(r"[2-9]\d{11}"),
           stdnum_check(aadhaar), Strength.WEAK, 0.55, ("aadhaar", "aadhar", "uidai", "आधार"),
           raw_shape=re.compile(r"\d{4} \d{4} \d{4}")),
    IdSpec("IN_PAN", "IN", frozenset({10}), re.compile(r"[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]"),
           stdnum_check(pan), Strength.STRONG, 0.7, ("pan", "permanent account", "income tax")),
)  # fmt: skip
