"""What each action puts in place of a value: redact, mask, keyed hash, pseudonym.

Pseudonyms are typed placeholders ``<PERSON_3f9a1c>``: the tag is an HMAC of the entity type and
the value's canonical form under a per-tenant key, so the same person is the same placeholder
throughout a request and across the turns of a conversation, while two tenants never share
placeholders. Angle brackets around an upper-case type and six hex digits survive the
tokenisers and the copying behaviour of current chat models well (see ``docs/pii.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from gateway.pii.normalise import normalise

__all__ = [
    "MAX_SUBJECTS",
    "PLACEHOLDER_RE",
    "canonical",
    "hash_token",
    "mask",
    "max_placeholder_len",
    "pseudonym_tag",
    "redact",
    "subject_digest",
    "subject_key",
    "tenant_key",
]

# The most value digests one record keeps of a request's values, and of its answer's (a request
# listing thousands of addresses keeps the first this many, sorted by digest: a search may miss
# the others).
MAX_SUBJECTS = 512
PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9a-f]{6,16}>")
_FREE_TEXT = frozenset({"PERSON", "LOCATION", "EMAIL_ADDRESS"})


def canonical(entity: str, value: str) -> str:
    """The form under which two spellings of one value are the same value."""
    text = normalise(value).text
    if entity in ("PERSON", "LOCATION"):
        return " ".join(text.casefold().split())
    if entity == "EMAIL_ADDRESS":
        return text.strip().casefold()
    return "".join(c for c in text if c.isalnum()).upper()


def tenant_key(secret: bytes, tenant: str) -> bytes:
    return hmac.new(secret, b"pii-tenant\0" + tenant.encode(), hashlib.sha256).digest()


def subject_key(secret: bytes) -> bytes:
    """The key of the data-subject index: one for every tenant (a search finds a person in any
    of them), apart from the pseudonyms' keys."""
    return hmac.new(secret, b"pii-subject\0", hashlib.sha256).digest()


def subject_digest(key: bytes, entity: str, value: str) -> str:
    """What the audit record keeps of a value found, so that it can be searched for later
    (``portcullis audit subject``): 16 hex digits of an HMAC of its type and canonical form."""
    mac = hmac.new(key, f"subject\0{entity}\0{canonical(entity, value)}".encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


def pseudonym_tag(key: bytes, entity: str, value: str, length: int = 6) -> str:
    mac = hmac.new(key, f"{entity}\0{canonical(entity, value)}".encode(), hashlib.sha256)
    return mac.hexdigest()[:length]


def max_placeholder_len(entity_types: set[str] | frozenset[str], tag_len: int = 16) -> int:
    return max((len(t) for t in entity_types), default=0) + tag_len + 3


def hash_token(key: bytes, entity: str, value: str) -> str:
    mac = hmac.new(key, f"hash\0{entity}\0{canonical(entity, value)}".encode(), hashlib.sha256)
    return f"[{entity}:{mac.hexdigest()[:12]}]"


def redact(entity: str) -> str:
    return f"[{entity}]"


def mask(entity: str, value: str) -> str:
    """Letters and digits become ``*``; identifiers keep their last four, separators stay."""
    alnum = sum(c.isalnum() for c in value)
    keep = 4 if entity not in _FREE_TEXT and alnum >= 8 else 0
    out: list[str] = []
    seen = 0
    for c in value:
        if c.isalnum():
            seen += 1
            out.append(c if seen > alnum - keep else "*")
        else:
            out.append(c if entity not in _FREE_TEXT or c in "@. " else "*")
    return "".join(out)
