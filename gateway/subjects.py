"""What the data-subject search (:mod:`audit.subjects`) takes from the gateway: the types a value
may have been found under, and the value's digest under each, with the same key the PII guard
used (:func:`gateway.pii.actions.subject_digest`). Shared by ``portcullis audit subject`` and
``POST /admin/audit/subjects``. The value itself is used here only: never logged, recorded or
kept."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.config import Settings
from gateway.secrets_store import ServerSecret

__all__ = ["MAX_VALUE_CHARS", "known_types", "phone_forms", "subject_digests"]

MAX_VALUE_CHARS = 512  # longer than any identifier, name or address the guard finds


def known_types(settings: Settings) -> frozenset[str]:
    """Every type the PII guard can find: the identifiers, e-mail, phone, IBAN and IP
    recognizers, the NER's people and places, and the organisation's own (``pii.custom``)."""
    from gateway.pii.ner import NER_ENTITIES
    from gateway.pii.scanner import PATTERN_ENTITIES

    return PATTERN_ENTITIES | NER_ENTITIES | {c.entity for c in settings.pii.custom}


def phone_forms(value: str, regions: Iterable[str]) -> set[str]:
    """The ways one phone number may have been written, as digits: as given; and, read as an
    international number (``+61 2 9374 4000``) or as a national one in each of ``regions``
    where it is valid (``(02) 9374 4000`` in Australia), its international digits (with and
    without ``00``), its national form (trunk prefix included) and its national significant
    number. The guard keeps a number's digest as it was written, so a search tries each."""
    import phonenumbers

    forms = {value}
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    tries: list[str | None] = [None] if text.startswith("+") else list(regions)
    for region in tries:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        code = str(number.country_code)
        national = phonenumbers.national_significant_number(number)
        written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms |= {code + national, "00" + code + national, written, national}
    return forms


def subject_digests(
    secret: ServerSecret, value: str, types: Iterable[str], phone_regions: Iterable[str] = ()
) -> dict[str, str]:
    """``value``'s digests under each of ``types`` (digest -> type): what a request's record
    holds if the guard found that value as that type — for a phone number, under each way it
    may have been written (:func:`phone_forms`, national numbers read in ``phone_regions``).
    ValueError for an empty or too long value."""
    from gateway.pii.actions import subject_digest, subject_key

    if not value.strip() or len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"value: 1 to {MAX_VALUE_CHARS} characters")
    key = subject_key(secret.derive("pii"))
    out: dict[str, str] = {}
    for t in sorted(set(types)):
        forms = phone_forms(value, phone_regions) if t == "PHONE_NUMBER" else {value}
        out.update({subject_digest(key, t, form): t for form in forms})
    return out
