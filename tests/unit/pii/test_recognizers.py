"""Per jurisdiction: a valid value is found (compact and formatted), a wrong checksum is not."""

from __future__ import annotations

import pytest

from gateway.pii.engine import Analyzer
from gateway.pii.generic import DEFAULT_PHONE_REGIONS, _valid_phone
from tests.unit.pii.conftest import found

# (jurisdiction, entity, sentence with {v}, valid, formatted valid, invalid checksum)
CASES = [
    ("TW", "TW_NATIONAL_ID", "Her ID is {v}.", "A123456789", "a123456789", "A123456788"),
    ("TW", "TW_NATIONAL_ID", "ARC {v} issued", "F812345676", "F812345676", "F812345675"),
    ("TW", "TW_UBN", "統一編號 {v}", "04010016", "04010016", "04010017"),
    ("KR", "KR_RRN", "주민등록번호 {v}", "8501011234566", "850101-1234566", "8513011234566"),
    ("KR", "KR_RRN", "RRN {v} (issued 2021)", "9912311234560", "991231-1234560", "9913311234560"),
    ("CN", "CN_RIC", "身份证 {v}", "11010519491231002X", "110105 19491231 002X",
     "110105194912310021"),
    ("JP", "JP_MY_NUMBER", "My Number {v}", "123456789018", "1234 5678 9018", "123456789017"),
    ("AU", "AU_TFN", "TFN {v}", "123456782", "123 456 782", "123456783"),
    ("AU", "AU_ABN", "ABN {v}", "51824753556", "51 824 753 556", "51824753557"),
    ("AU", "AU_ACN", "ACN {v}", "004085616", "004 085 616", "004085617"),
    ("AU", "AU_MEDICARE", "Medicare card {v}", "2123456701", "2123 45670 1", "2123456801"),
    ("SG", "SG_NRIC_FIN", "NRIC {v}", "S1234567D", "s1234567d", "S1234567E"),
    ("SG", "SG_NRIC_FIN", "FIN {v}", "M1234567K", "M1234567K", "M1234567L"),
    ("SG", "SG_NRIC_FIN", "FIN {v}", "G1234567X", "G1234567X", "G1234567Y"),
    ("IN", "IN_AADHAAR", "Aadhaar {v}", "234567890124", "2345 6789 0124", "234567890125"),
    ("IN", "IN_PAN", "PAN {v}", "ABCPE1234F", "ABCPE1234F", "ABCQE1234F"),
    ("IT", "IT_FISCAL_CODE", "CF {v}", "RSSMRA85T10A562S", "rssmra85t10a562s",
     "RSSMRA85T10A562T"),
    ("IT", "IT_VAT_CODE", "Partita IVA {v}", "12345670017", "12345670017", "12345670018"),
    ("DE", "DE_TAX_ID", "Steuer-IdNr {v}", "86095742719", "86 095 742 719", "86095742718"),
    ("NL", "NL_BSN", "BSN {v}", "111222333", "1112.22.333", "111222334"),
    ("GB", "UK_NHS", "NHS number {v}", "9434765919", "943 476 5919", "9434765918"),
    ("GB", "UK_NINO", "NI number {v}", "AB123456C", "AB 12 34 56 C", "BG123456C"),
    ("US", "US_SSN", "SSN {v}", "123456789", "123-45-6789", "000456789"),
    ("US", "US_ITIN", "ITIN {v}", "912701234", "912-70-1234", "912001234"),
    ("CA", "CA_SIN", "SIN {v}", "146456306", "146-456-306", "146456307"),
    ("CZ", "CZ_BIRTH_NUMBER", "rodné číslo {v}", "8551011238", "855101/1238", "8551011239"),
    ("BE", "BE_NATIONAL_NUMBER", "Rijksregisternummer {v}", "85073003328", "85.07.30-033.28",
     "85073003329"),
    ("IE", "IE_PPS", "PPS {v}", "1234567T", "1234567t", "1234567A"),
    ("FR", "FR_NIR", "NIR {v}", "285057800608441", "2 85 05 78 006 084 41", "285057800608442"),
    ("*", "CREDIT_CARD", "card {v}", "4111111111111111", "4111 1111 1111 1111",
     "4111111111111112"),
    ("*", "IBAN_CODE", "IBAN {v}", "GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32",
     "GB82WEST12345698765433"),
]  # fmt: skip
IDS = [f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("jur", "entity", "sentence", "valid", "formatted", "bad"), CASES, ids=IDS)
def test_valid_value_is_found(
    patterns: Analyzer, jur: str, entity: str, sentence: str, valid: str, formatted: str, bad: str
) -> None:
    assert (entity, valid) in found(patterns, sentence.format(v=valid))


@pytest.mark.parametrize(("jur", "entity", "sentence", "valid", "formatted", "bad"), CASES, ids=IDS)
def test_formatted_value_is_found_whole(
    patterns: Analyzer, jur: str, entity: str, sentence: str, valid: str, formatted: str, bad: str
) -> None:
    assert (entity, formatted) in found(patterns, sentence.format(v=formatted))


@pytest.mark.parametrize(("jur", "entity", "sentence", "valid", "formatted", "bad"), CASES, ids=IDS)
def test_wrong_checksum_is_not_reported_as_that_identifier(
    patterns: Analyzer, jur: str, entity: str, sentence: str, valid: str, formatted: str, bad: str
) -> None:
    assert entity not in {e for e, _ in found(patterns, sentence.format(v=bad))}


CONTEXT_ONLY = [
    ("NL_BSN", "Invoice total 111222333 units", "BSN: 111222333"),
    ("US_SSN", "order 123456789 shipped", "my ssn is 123456789"),
    ("TW_UBN", "batch 04010016 ok", "統一編號 04010016"),
    ("AU_ACN", "reference 004085616", "ACN 004085616"),
]


@pytest.mark.parametrize(("entity", "without", "with_context"), CONTEXT_ONLY)
def test_context_gated_identifiers_need_a_context_word(
    patterns: Analyzer, entity: str, without: str, with_context: str
) -> None:
    assert entity not in {e for e, _ in found(patterns, without)}
    assert entity in {e for e, _ in found(patterns, with_context)}


PHONES = [
    ("TW", "call 0912-345-678"), ("TW", "+886 912 345 678"), ("KR", "phone 010-1234-5678"),
    ("AU", "mobile 0412 345 678"), ("IT", "tel 312 345 6789"), ("CN", "phone 138 0013 8000"),
    ("JP", "call 090-1234-5678"), ("SG", "call 9123 4567"), ("IN", "+91 98765 43210"),
    ("DE", "Handy 01512 3456789"), ("NL", "bel 06-12345678"), ("CZ", "+420 601 123 456"),
    ("BE", "gsm 0470 12 34 56"), ("IE", "call 087 123 4567"), ("FR", "tel 06 12 34 56 78"),
    ("US", "call (212) 555-0199"), ("GB", "mobile 07700 900123"),
]  # fmt: skip


@pytest.mark.parametrize(("region", "text"), PHONES, ids=[p[0] for p in PHONES])
def test_phone_numbers_of_each_region_are_found(patterns: Analyzer, region: str, text: str) -> None:
    assert "PHONE_NUMBER" in {e for e, _ in found(patterns, text)}


RECORD_NUMBERS = [
    ("Reference 12345000001.", "12345000001"),
    ("Order no. 0412345678 has shipped", "0412345678"),
    ("see invoice #0212345678", "0212345678"),
    ("Ticket: 0412 345 678", "0412 345 678"),
    ("tracking number 5551234567 (parcel)", "5551234567"),
    # a phone word's letters inside another word is no phone word: they made these phones
    ("Hotel reservation 0412345678 is held", "0412345678"),
    ("Cancellation number 0212345678 sent", "0212345678"),
    ("Excellent - account 0412345678 is active", "0412345678"),
    ("Product recall: policy 0212345678", "0212345678"),
    ("Telemetry alert for customer 0412345678", "0412345678"),
]


@pytest.mark.parametrize(("text", "value"), RECORD_NUMBERS)
def test_a_business_record_number_is_not_taken_for_a_phone(
    patterns: Analyzer, text: str, value: str
) -> None:
    assert _valid_phone(value, DEFAULT_PHONE_REGIONS)  # a phone number somewhere, by its digits
    assert ("PHONE_NUMBER", value) not in found(patterns, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ring him on 0412 345 678 after four", "0412 345 678"),  # no label before it
        ("order ready, call 0412 345 678", "0412 345 678"),  # a phone word before it
        ("order +61 412 345 678", "+61 412 345 678"),  # international format
        ("the disorder clinic 0212345678", "0212345678"),  # a label only as a whole word
        ("Ph: 0412 345 678 (after hours)", "0412 345 678"),  # the short phone words
        ("Tel. 0412 345 678", "0412 345 678"),
        ("Mob 0412 345 678, any time", "0412 345 678"),
        ("account manager's telephone: 0412345678", "0412345678"),
        ("電話 0412345678", "0412345678"),
    ],
)
def test_phone_numbers_near_record_words_are_still_found(
    patterns: Analyzer, text: str, value: str
) -> None:
    assert ("PHONE_NUMBER", value) in found(patterns, text)


GENERIC = [
    ("EMAIL_ADDRESS", "write to jane.doe+x@mail.example.org today", "jane.doe+x@mail.example.org"),
    ("IP_ADDRESS", "login from 81.2.69.142 failed", "81.2.69.142"),
    ("IP_ADDRESS", "from 2001:4860:4860::8888 ok", "2001:4860:4860::8888"),
]


@pytest.mark.parametrize(("entity", "text", "value"), GENERIC)
def test_contacts_and_addresses_are_found(
    patterns: Analyzer, entity: str, text: str, value: str
) -> None:
    assert (entity, value) in found(patterns, text)
