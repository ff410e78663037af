"""The data-subject search's view of a value (:mod:`gateway.subjects`): one digest per type, and
for a phone number one per way it may have been written, so that a number written nationally is
found by its international form and the other way round."""

from __future__ import annotations

import pytest

from gateway.pii.actions import subject_digest, subject_key
from gateway.secrets_store import ServerSecret
from gateway.subjects import phone_forms, subject_digests

SECRET = ServerSecret(b"k" * 32)


def _kept(value: str, etype: str) -> str:
    """What the guard records for ``value`` found as ``etype``."""
    return subject_digest(subject_key(SECRET.derive("pii")), etype, value)


@pytest.mark.parametrize(
    ("written", "searched"),
    [
        ("(02) 9374 4000", "+61 2 9374 4000"),
        ("+61 2 9374 4000", "02 9374 4000"),
        ("0061 2 9374 4000", "(02) 9374-4000"),
        ("02-9374-4000", "0061293744000"),
        ("+44 20 7946 0958", "020 7946 0958"),
    ],
)
def test_a_phone_number_is_found_however_it_was_written(written: str, searched: str) -> None:
    digests = subject_digests(SECRET, searched, ["PHONE_NUMBER"], ("US", "GB", "AU"))
    assert _kept(written, "PHONE_NUMBER") in digests
    assert set(digests.values()) == {"PHONE_NUMBER"}


def test_forms_of_a_number_and_of_what_is_none() -> None:
    forms = phone_forms("+61 2 9374 4000", ())
    assert {"61293744000", "0061293744000", "293744000", "(02) 9374 4000"} <= forms
    assert phone_forms("not a number", ("AU",)) == {"not a number"}
    assert phone_forms("12", ("AU",)) == {"12"}


def test_each_type_one_digest_and_a_bad_value_is_refused() -> None:
    digests = subject_digests(SECRET, "123 456 782", ["AU_TFN", "US_SSN"])
    assert sorted(digests.values()) == ["AU_TFN", "US_SSN"]
    assert _kept("123456782", "AU_TFN") in digests
    for bad in ("", "   ", "x" * 513):
        with pytest.raises(ValueError, match="value"):
            subject_digests(SECRET, bad, ["AU_TFN"])
