"""The values of the reliability reference's own measurement of detector evasion
(``shared/reference/reliability.md`` §2.3, rows P-1 and P-2; its IPv4 address unnamed there, a
public one here: private and loopback addresses are infrastructure, not personal data, to the
guard). The spelled-out, Unicode and encoded forms are tested over these."""

from __future__ import annotations

__all__ = ["REFERENCE_VALUES"]

REFERENCE_VALUES = {
    "CREDIT_CARD": "4111 1111 1111 1111",
    "EMAIL_ADDRESS": "john.smith@example.com",
    "US_SSN": "536-90-4399",
    "PHONE_NUMBER": "+61412345678",
    "AU_TFN": "123 456 782",
    "AU_ABN": "51 824 753 556",
    "AU_MEDICARE": "2123 45670 1",
    "IBAN_CODE": "GB82WEST12345698765432",
    "IP_ADDRESS": "81.2.69.142",
}
