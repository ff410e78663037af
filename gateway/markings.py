"""Security classification markings in a request, read as the level policy compares with each
backend's accreditation (``accredited_to``).

Public-sector documents carry their classification as a marking, and staff paste documents. The
request's texts (every text the PII walk reads: :func:`gateway.pii.walk.extract`) are searched
for three forms, in capitals as the schemes write them:

- a **banner line**, a line that is the marking alone, optionally with caveats after ``//``,
  ``,`` or `` - ``: ``PROTECTED``, ``OFFICIAL: Sensitive``, ``SECRET//NOFORN``,
  ``TOP SECRET//SCI``, ``OFFICIAL-SENSITIVE``, ``CONFIDENTIAL``, ``CUI``;
- an **email protective marking** (Australian Government Email Protective Marking Standard):
  ``[SEC=PROTECTED]``, ``[SEC=OFFICIAL:Sensitive, ACCESS=Legal-Privilege]``, and the
  ``X-Protective-Marking`` header's ``SEC=...``;
- a **label**: ``Classification: SECRET``, ``Security classification: PROTECTED``.

The levels, lowest first: ``official`` (OFFICIAL, UNOFFICIAL), ``sensitive`` (OFFICIAL: Sensitive,
OFFICIAL-SENSITIVE, CUI), ``protected`` (PROTECTED; the US CONFIDENTIAL), ``secret``,
``top_secret``. A request's level is the highest marking found (None without one). A request
without any of the words these forms start with costs one pass over its encoded bytes.

Not read: markings in lower case or in prose ("this is secret"), spelled out with escapes, or in
images and files; a marking is a hygiene control for documents pasted as they are, not a barrier
for someone removing the marking on purpose (docs/policy.md, "Classification markings").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from gateway.pii.walk import extract

__all__ = ["LEVELS", "marking_level"]

LEVELS: Final = ("official", "sensitive", "protected", "secret", "top_secret")
_RANK = {level: i for i, level in enumerate(LEVELS)}

# Words every marking form begins with (the encoded request is searched for these first).
_HINTS = (b"OFFICIAL", b"PROTECTED", b"SECRET", b"CONFIDENTIAL", b"CUI", b"SEC=", b"lassif")

_MARK = (
    r"(?P<mark>TOP[ -]SECRET|SECRET|PROTECTED|CONFIDENTIAL|OFFICIAL(?:: ?|-| )Sensitive"
    r"|OFFICIAL-SENSITIVE|OFFICIAL|UNOFFICIAL|CUI)"
)
_BANNER = re.compile(
    r"^[ \t]*" + _MARK + r"(?:[ \t]*(?://|,|[ \t]-[ \t])[^\n]*)?[ \t]*$", re.MULTILINE
)
_EMAIL = re.compile(r"\bSEC=" + _MARK + r"(?=[\],;\s]|$)")
_LABEL = re.compile(
    r"\b(?:[Ss]ecurity )?[Cc]lassification[ \t]*[:=][ \t]*" + _MARK + r"(?![A-Za-z])"
)


# A marking's words, spaced (``TOP-SECRET``, ``OFFICIAL:Sensitive`` -> ``TOP SECRET``,
# ``OFFICIAL SENSITIVE``), -> its level; anything else read is ``official``.
_LEVEL_OF = {
    "TOP SECRET": "top_secret",
    "SECRET": "secret",
    "PROTECTED": "protected",
    "CONFIDENTIAL": "protected",
    "OFFICIAL SENSITIVE": "sensitive",
    "CUI": "sensitive",
}


def _level(mark: str) -> str:
    words = " ".join(mark.upper().replace("-", " ").replace(":", " ").split())
    return _LEVEL_OF.get(words, "official")


def _highest(levels: Iterable[str | None]) -> str | None:
    return max((lv for lv in levels if lv is not None), key=_RANK.__getitem__, default=None)


def level_of(text: str) -> str | None:
    """The highest marking in one text, or None."""
    return _highest(
        _level(m.group("mark")) for p in (_BANNER, _EMAIL, _LABEL) for m in p.finditer(text)
    )


def marking_level(endpoint: str, body: Mapping[str, Any], encoded: bytes) -> str | None:
    """The highest marking in the request's texts, or None; ``encoded`` is the request's JSON,
    searched first for the words a marking starts with."""
    if not any(h in encoded for h in _HINTS):
        return None
    return _highest(level_of(slot.text) for slot in extract(endpoint, body))
