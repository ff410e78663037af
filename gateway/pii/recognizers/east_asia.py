# ruff: noqa: RUF003 - identifiers and context words in their own scripts
"""Taiwan, South Korea, mainland China, Japan."""

from __future__ import annotations

import datetime as dt
import re

from stdnum.cn import ric
from stdnum.jp import in_ as jp_in
from stdnum.kr import rrn
from stdnum.tw import ubn

from gateway.pii.recognizers.base import IdSpec, Strength, stdnum_check

__all__ = ["SPECS", "tw_id_valid"]

# Letter → two-digit area code of Taiwan's national ID (I, O, W–Z are out of order).
_TW_LETTERS = "ABCDEFGHJKLMNPQRSTUVXYWZIO"


def tw_id_valid(value: str) -> bool:
    """Taiwan national ID and the new-format resident certificate (stdnum has neither)."""
    if len(value) != 10 or not value[0].isalpha() or not value[1:].isdigit():
        return False
    if value[1] not in "1289":
        return False
    code = _TW_LETTERS.find(value[0]) + 10
    if code < 10:
        return False
    digits = [code // 10, code % 10] + [int(c) for c in value[1:]]
    weights = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)
    return sum(d * w for d, w in zip(digits, weights, strict=True)) % 10 == 0


def _kr_date_ok(value: str) -> bool:
    if len(value) != 13 or not value.isdigit() or value[6] not in "12345678":
        return False
    century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900}.get(value[6], 2000)
    try:
        dt.date(century + int(value[:2]), int(value[2:4]), int(value[4:6]))
    except ValueError:
        return False
    return True


def _kr_checksum_ok(value: str) -> bool:
    return _kr_date_ok(value) and stdnum_check(rrn)(value)


_KR_CONTEXT = ("rrn", "resident registration", "주민등록", "registration number", "korean id")

SPECS: tuple[IdSpec, ...] = (
    IdSpec("TW_NATIONAL_ID", "TW", frozenset({10}), re.compile(r"[A-Z][1289]\d{8}"),
           tw_id_valid, Strength.STRONG, 0.9,
           ("身分證", "national id", "taiwan id", "id number", "resident certificate", "arc")),
    IdSpec("TW_UBN", "TW", frozenset({8}), re.compile(r"\d{8}"), stdnum_check(ubn),
           Strength.CONTEXT, 0.6, ("統一編號", "ubn", "unified business", "統編")),
    # Korea: the checksum holds only before October 2020, so it boosts rather than gates.
    IdSpec("KR_RRN", "KR", frozenset({13}), re.compile(r"\d{6}[1-4]\d{6}"), _kr_checksum_ok,
           Strength.STRONG, 0.85, _KR_CONTEXT),
    IdSpec("KR_FRN", "KR", frozenset({13}), re.compile(r"\d{6}[5-8]\d{6}"), _kr_checksum_ok,
           Strength.STRONG, 0.85, (*_KR_CONTEXT, "foreigner registration", "외국인등록")),
    IdSpec("KR_RRN", "KR", frozenset({13}), re.compile(r"\d{6}[1-4]\d{6}"), _kr_date_ok,
           Strength.CONTEXT, 0.6, _KR_CONTEXT,
           raw_shape=re.compile(r"\d{6}-\d{7}")),
    IdSpec("CN_RIC", "CN", frozenset({18}), re.compile(r"[1-9]\d{16}[\dX]"), stdnum_check(ric),
           Strength.STRONG, 0.95, ("身份证", "resident identity", "id card", "identity card")),
    IdSpec("JP_MY_NUMBER", "JP", frozenset({12}), re.compile(r"\d{12}"), stdnum_check(jp_in),
           Strength.WEAK, 0.5,
           ("マイナンバー", "個人番号", "my number", "mynumber", "individual number")),
)  # fmt: skip
