"""The shapes of values the audit record keeps, and of those it drops as possible content.

:mod:`audit.event` applies these rules to every event; the gateway applies the same rules where
such values come in (key creation, request ids, the backend catalogue, the CLI's actor), so that
what is accepted there is never dropped from the record later.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "IDENTIFIER_CHARS",
    "is_identifier",
    "is_name",
    "is_terms_url",
    "looks_personal",
    "not_personal",
    "plain_model_name",
    "plain_request_id",
]

_ID = re.compile(r"^[\w.:/@+\-]{0,200}\Z", re.UNICODE)
# A link to an operator's published terms: http(s), printable ASCII, no spaces (percent-escapes
# such as %20 included, which an identifier does not allow).
_URL = re.compile(r"^https?://[!-~]{1,500}\Z")
# Shapes of personal data or secrets that must not pass even where an identifier is allowed,
# in fields the caller controls (model, request id, error code): e-mail addresses, runs of 9 or
# more digits (phone, national id, card numbers), API-key-like tokens.
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
_DIGIT_RUN = re.compile(r"\+?\d[\d\s\-.()/]{7,}\d")
_KEYLIKE = re.compile(r"(?i)\b(?:sk|pk|rk|key|bearer)[-_ ][A-Za-z0-9_\-]{12,}")
# A UUID (a tracing system's request id) is not a phone number, even when its last group is
# twelve decimal digits.
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
# A model snapshot's date (``o1-2024-12-17``, ``claude-opus-4-1-20250805``): with the version
# digits before it, it reads as a run of nine digits; it is taken out before that test.
_SNAPSHOT_DATE = re.compile(
    r"(?<!\d)(?:19|20)\d\d(-?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])(?!\d)"
)


@functools.lru_cache(maxsize=4096)
def looks_personal(v: str) -> bool:
    if _EMAIL.search(v) or _KEYLIKE.search(v):
        return True
    return any(sum(c.isdigit() for c in m.group()) >= 9 for m in _DIGIT_RUN.finditer(v))


def not_personal(v: str) -> bool:
    return not looks_personal(v)


# The gateway's own request ids (gateway.http.request_id): letters only after ``req_``, so none
# of the shapes above can match; taken before them, they neither cost the three searches nor
# crowd the verdicts worth caching out of ``looks_personal``'s cache (each id is new).
_GENERATED_ID = re.compile(r"req_[a-p]{24}")


def plain_request_id(v: str) -> bool:
    """Whether a caller's request id may stand in the record: a UUID, or no personal shape."""
    if _GENERATED_ID.fullmatch(v) is not None or _UUID.match(v) is not None:
        return True
    return not looks_personal(v)


def plain_model_name(v: str) -> bool:
    """A model name with no personal shape once its snapshot date is set aside."""
    return not looks_personal(_SNAPSHOT_DATE.sub("-", v))


# What :func:`is_identifier` admits, in words, for the messages of those who apply it.
IDENTIFIER_CHARS = "letters, digits and _ . : / @ + - (no spaces)"


@functools.lru_cache(maxsize=8192)
def is_identifier(v: str) -> bool:
    """Whether the record keeps ``v`` where an identifier belongs (a principal's user, team,
    tenant or tag; a rule id): letters, digits and ``_ . : / @ + -``, at most 200, no spaces.
    Identifiers repeat across events (users, jurisdictions, rule ids): the verdict is cached."""
    return _ID.match(v) is not None


def is_name(v: object) -> bool:
    """A non-empty identifier: what key creation accepts for a user, team, tenant or tag, and
    the CLI for an actor, so that the record never drops one."""
    return isinstance(v, str) and bool(v) and is_identifier(v)


def is_terms_url(v: str) -> bool:
    """Whether the record keeps ``v`` as a backend's ``retention.terms_url`` (the configuration
    refuses any other value)."""
    return _URL.match(v) is not None
