"""Recognizers that do not fit the run-window scheme: email, IP address, IBAN, phone numbers.

Phone numbers: one candidate regex finds digit sequences that could be numbers; only those
candidates are parsed with ``phonenumbers`` (international form first, then each configured
region), instead of running a matcher over the whole text once per region.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import phonenumbers
from stdnum import iban

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "Candidate",
    "find_emails",
    "find_ibans",
    "find_ips",
    "find_phones",
]

DEFAULT_PHONE_REGIONS: tuple[str, ...] = (
    "US", "GB", "TW", "KR", "AU", "IT", "CN", "JP", "SG", "IN", "DE", "NL", "CZ", "BE", "IE",
    "FR", "CA",
)  # fmt: skip


class Candidate(NamedTuple):
    start: int
    end: int
    entity: str
    score: float
    also: tuple[str, ...] = ()  # types of candidates inside it that gave way (see select)


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9])"
)
_EMAIL_SUPPRESS_LOCAL = frozenset({"git"})

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_VERSIONISH = re.compile(r"(?:\bv|version|release|ver\.?)\s*$", re.IGNORECASE)

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}")

_PHONE = re.compile(
    r"(?<![\w+\-./])(?:\+|00)?\(?\d[\d()]*(?:[ .\-]?\(?\d[\d()]*){5,16}(?![\w]|[\-./]\w)"
)
_DATE = re.compile(
    r"(?:\d{1,3}\.){3}\d{1,3}|\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}"
)
# A phone word before a number, as a word: "tel" in "hotel" or "telemetry", "cell" in
# "cancellation", "call" in "recall" are not one (they made any valid number there a phone at
# 0.9, past the record-label check). The CJK words have no word boundaries to ask for.
_PHONE_CONTEXT = re.compile(
    r"(?<![a-z])(?:(?:tele|cell|smart|mobile\s?)?phones?|tel|mobiles?|mob|cell|ph|whatsapp|fax"
    r"|call(?:s|ed|ing)?|ring)(?![a-z])|電話|전화"
)
# A national-format digit run right after the label of a business record ("Order 12345678901",
# "invoice #0212345678", "Reference: 0412 345 678") is that record's number: without a phone
# word before it, it is not taken for a phone number (it was, whenever some region's plan
# admitted it, and was pseudonymised as one).
_RECORD_LABEL = re.compile(
    r"(?<![a-z])(?:order|ref|reference|invoice|ticket|case|tracking|booking|confirmation|claim"
    r"|serial|transaction|receipt|shipment|parcel|consignment|reservation|cancellation|account"
    r"|policy|customer|member|membership|incident|application)"
    r"(?:\s*(?:no|nr|num|number|id|code))?\.?\s*[:#]?\s*$"
)


def find_emails(text: str) -> Iterator[Candidate]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        local = m.group().split("@", 1)[0]
        if local.lower() in _EMAIL_SUPPRESS_LOCAL:
            continue
        yield Candidate(m.start(), m.end(), "EMAIL_ADDRESS", 0.95)


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        ip.is_private or ip.is_loopback or ip.is_unspecified or ip.is_multicast
        or ip.is_link_local or ip.is_reserved
    )  # fmt: skip


def find_ips(text: str) -> Iterator[Candidate]:
    """Public addresses only: private, loopback and unspecified ones are infrastructure."""
    if "." in text:
        for m in _IPV4.finditer(text):
            if _VERSIONISH.search(text, max(0, m.start() - 12), m.start()):
                continue
            try:
                ip4 = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if _public(ip4):
                yield Candidate(m.start(), m.end(), "IP_ADDRESS", 0.8)
    if "::" in text or text.count(":") >= 7:
        for m in _IPV6.finditer(text):
            try:
                ip6 = ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            if _public(ip6):
                yield Candidate(m.start(), m.end(), "IP_ADDRESS", 0.8)


def find_ibans(text: str) -> Iterator[Candidate]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        # The regex is greedy; shrink from the right to the longest valid IBAN.
        for end in range(len(raw), 14, -1):
            if raw[end - 1] == " ":
                continue
            if iban.is_valid(raw[:end]):
                yield Candidate(m.start(), m.start() + end, "IBAN_CODE", 0.95)
                break


def _valid_phone(raw: str, regions: Iterable[str]) -> bool:
    digits = sum(c.isdigit() for c in raw)
    if not 7 <= digits <= 15:
        return False
    try:
        if raw.startswith(("+", "00")):
            intl = "+" + raw[2:] if raw.startswith("00") else raw
            return bool(phonenumbers.is_valid_number(phonenumbers.parse(intl, None)))
        for region in regions:
            num = phonenumbers.parse(raw, region)
            if phonenumbers.is_valid_number(num):
                return True
    except phonenumbers.NumberParseException:
        return False
    return False


def _phone_shaped(raw: str) -> bool:
    """A national-format number needs a phone-like layout to count without a context word."""
    groups = re.findall(r"\d+", raw)
    if len(groups) == 1:
        return len(groups[0]) >= 10 or groups[0].startswith("0")
    return sum(len(g) == 1 for g in groups) <= 1 and not all(
        len(g) == 4 and g[:2] in ("19", "20") for g in groups
    )


def find_phones(
    text: str, regions: tuple[str, ...], taken: Sequence[tuple[int, int]] = ()
) -> Iterator[Candidate]:
    """Phone numbers. ``taken``: spans of checksum-valid identifiers; a national-format number
    without a context word would lose to them anyway, so it is not parsed (parsing a number
    that is valid nowhere costs one ``phonenumbers.parse`` per region)."""
    lower: str | None = None
    for m in _PHONE.finditer(text):
        raw = m.group()
        start, end = m.start(), m.end()
        if raw.count("(") != raw.count(")"):
            raw = raw.strip("()")
            start, end = start + (m.group().startswith("(")), end - (m.group().endswith(")"))
        if _DATE.fullmatch(raw):
            continue
        if lower is None:
            lower = text.lower()
        before = lower[max(0, start - 40) : start]
        worded = _PHONE_CONTEXT.search(before) is not None
        intl = raw.startswith(("+", "00"))
        if not worded and not intl:
            if not _phone_shaped(raw) or any(s < end and start < e for s, e in taken):
                continue
            if _RECORD_LABEL.search(before):
                continue
        if not _valid_phone(raw, regions):
            continue
        # Without a context word a national-format number ranks below checksum-valid identifiers.
        score = 0.9 if worded else 0.45
        if intl:
            score = max(score, 0.7)
        yield Candidate(start, end, "PHONE_NUMBER", score)
