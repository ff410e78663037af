"""The canonical bytes of an audit event: what its Merkle leaf is computed over.

One spelling per event: sorted keys, no whitespace, UTF-8 (not ASCII-escaped), no NaN.
:func:`canonical_json` is the reference; :func:`encode_normalised` writes the same bytes several
times faster for the bodies :mod:`audit.event` produces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "PLAIN_FLOAT_MAX",
    "PLAIN_FLOAT_MIN",
    "canonical_bytes",
    "canonical_json",
    "encode_normalised",
]

# Floats that ``json.dumps`` and msgspec spell alike (no exponent); an event holding another
# ("exotic") takes the slower, reference encoder.
PLAIN_FLOAT_MIN, PLAIN_FLOAT_MAX = 1e-4, 1e16


def canonical_json(event: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 (not ASCII-escaped), no NaN: one spelling per event."""
    return json.dumps(
        event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    return canonical_json(event).encode("utf-8")


_SORTED = msgspec.json.Encoder(order="sorted").encode


def encode_normalised(body: Mapping[str, Any], exotic: bool) -> bytes:
    """:func:`canonical_bytes` of a body the normaliser produced, several times faster.

    msgspec with sorted keys writes the same bytes as the reference encoder for every value a
    normalised body can hold (strings, integers, booleans, null, lists, maps) except floats
    that need an exponent (``1e-05``, ``1e+16``): a body holding one (``exotic``) takes the
    reference encoder, and so does anything msgspec refuses (a test pins the equivalence).
    """
    if not exotic:
        try:
            return _SORTED(body)
        except (TypeError, ValueError, UnicodeError, msgspec.EncodeError):
            pass
    return canonical_bytes(body)
