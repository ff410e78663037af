"""Italy, Germany, the Netherlands, the United Kingdom, Czechia, Belgium, Ireland, France."""

from __future__ import annotations

import re

from stdnum.be import nn
from stdnum.cz import rc
from stdnum.de import idnr
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.ie import pps
from stdnum.it import codicefiscale, iva
from stdnum.nl import bsn

from gateway.pii.recognizers.base import IdSpec, Strength, stdnum_check

__all__ = ["SPECS"]

_OMO = "[0-9LMNP-V]"

# UK NINO: no checksum; distinctive letters, excluded prefixes.
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"[ ]?\d{2}[ ]?\d{2}[ ]?\d{2}[ ]?[A-D](?![A-Za-z0-9])"
)


def _true(_value: str) -> bool:
    return True


SPECS: tuple[IdSpec, ...] = (
    IdSpec("IT_FISCAL_CODE", "IT", frozenset({16}),
           re.compile(rf"[A-Z]{{6}}{_OMO}{{2}}[ABCDEHLMPRST]{_OMO}{{2}}[A-Z]{_OMO}{{3}}[A-Z]"),
           stdnum_check(codicefiscale), Strength.STRONG, 0.95,
           ("codice fiscale", "fiscal code", "cf")),
    IdSpec("IT_VAT_CODE", "IT", frozenset({11}), re.compile(r"\d{11}"), stdnum_check(iva),
           Strength.WEAK, 0.5, ("partita iva", "p.iva", "vat", "iva")),
    IdSpec("DE_TAX_ID", "DE", frozenset({11}), re.compile(r"[1-9]\d{10}"), stdnum_check(idnr),
           Strength.WEAK, 0.5, ("steuer", "idnr", "tax id", "identifikationsnummer", "tin"),
           raw_shape=re.compile(r"\d{2} \d{3} \d{3} \d{3}")),
    IdSpec("NL_BSN", "NL", frozenset({8, 9}), re.compile(r"\d{8,9}"),
           stdnum_check(bsn), Strength.CONTEXT, 0.6,
           ("bsn", "burgerservicenummer", "sofinummer", "sofi-nummer", "citizen service")),
    IdSpec("UK_NHS", "GB", frozenset({10}), re.compile(r"\d{10}"), stdnum_check(nhs),
           Strength.WEAK, 0.5, ("nhs", "national health"),
           raw_shape=re.compile(r"\d{3}[ -]\d{3}[ -]\d{4}")),
    IdSpec("UK_NINO", "GB", frozenset({9}), re.compile(r"[A-Z]{2}\d{6}[A-D]"), _true,
           Strength.STRONG, 0.7, ("national insurance", "nino", "ni number"), regex=_NINO),
    IdSpec("CZ_BIRTH_NUMBER", "CZ", frozenset({10}), re.compile(r"\d{10}"), stdnum_check(rc),
           Strength.WEAK, 0.55, ("rodné číslo", "rodne cislo", "birth number", "rč"),
           raw_shape=re.compile(r"\d{6}/\d{4}")),
    IdSpec("BE_NATIONAL_NUMBER", "BE", frozenset({11}), re.compile(r"\d{11}"), stdnum_check(nn),
           Strength.WEAK, 0.6, ("rijksregister", "national number", "registre national", "niss"),
           raw_shape=re.compile(r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}")),
    IdSpec("IE_PPS", "IE", frozenset({8, 9}), re.compile(r"\d{7}[A-W][ABHTWX]?"),
           stdnum_check(pps), Strength.STRONG, 0.75, ("pps", "ppsn", "personal public service")),
    IdSpec("FR_NIR", "FR", frozenset({15}), re.compile(r"[12]\d{4}[\dAB]\d{9}"),
           stdnum_check(nir), Strength.STRONG, 0.85,
           ("nir", "sécurité sociale", "securite sociale", "social security", "insee")),
)  # fmt: skip
