"""The configuration a request was decided under, kept so that it can be shown later.

Every audit record carries ``config_hash``: the first 16 hex digits of the SHA-256 of the
configuration's **document** — the validated settings as canonical JSON (sorted keys, no
whitespace, UTF-8), with what could be a secret taken out:

- the password in any URL (``postgresql+asyncpg://app:[redacted]@db/portcullis``), and the value of
  any query parameter whose name reads as a secret (``password``, ``token``, ``key``, ...);
- the path and query of each budget webhook's URL (a chat webhook's URL *is* its credential:
  ``https://hooks.slack.com/[redacted]``).

Credentials themselves are never in the settings (they are read from environment variables and
files the settings only name). The gateway keeps each document it runs under in
``<data_dir>/config/config-<hash>.json`` — at start and on each reload — once, by hash; an
evidence pack copies the documents of the hashes its period was decided under, and anyone can
check that a document's SHA-256 begins with its hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from audit.canonical import canonical_bytes
from gateway.config import Settings

__all__ = [
    "CONFIG_HASH",
    "REDACTED",
    "archive_config",
    "archived_config",
    "config_archive",
    "config_document",
    "config_file_name",
    "config_hash",
    "document_hash",
]

log = logging.getLogger("portcullis")

REDACTED = "[redacted]"
CONFIG_HASH = re.compile(r"[0-9a-f]{16}")  # what an audit record's config_hash looks like
_SECRET_PARAM = re.compile(r"pass|secret|token|key|auth|sig|credential", re.IGNORECASE)


def _redact_url(value: str, whole_path: bool = False) -> str:
    """``value`` without its password and secret-looking query values (and, with
    ``whole_path``, without its path and query); anything that is not an absolute URL as is."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:  # an unparseable port or bracket: not a URL to keep as written
        return REDACTED if "@" in value else value
    if not parts.scheme or not parts.netloc:
        return value
    netloc = parts.netloc
    if password is not None or "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{REDACTED}@{host}" if password is not None else f"{name}@{host}"
    if whole_path:
        path = f"/{REDACTED}" if parts.path.strip("/") or parts.query else parts.path
        return urlunsplit((parts.scheme, netloc, path, "", ""))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="[]"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    return value


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as JSON values, every URL's password and secret query values and every
    budget webhook's path taken out."""
    doc: dict[str, Any] = _redact(settings.model_dump(mode="json"))
    for hook in doc.get("budgets", {}).get("webhooks", []):
        if isinstance(hook.get("url"), str):
            hook["url"] = _redact_url(hook["url"], whole_path=True)
    return doc


def config_document(settings: Settings) -> bytes:
    """The configuration's document: :func:`redacted` as canonical JSON."""
    return canonical_bytes(redacted(settings))


def document_hash(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()[:16]


def config_hash(settings: Settings) -> str:
    """The configuration's identity in every audit record (16 hex digits of its document's
    SHA-256: no secret and no password goes into it)."""
    return document_hash(config_document(settings))


def config_archive(data_dir: str | Path) -> Path:
    """Where the gateway keeps every configuration document it ran under, by hash."""
    return Path(data_dir) / "config"


def config_file_name(digest: str) -> str:
    return f"config-{digest}.json"


def archive_config(document: bytes, directory: Path) -> Path | None:
    """Keep a configuration's document (:func:`config_document`) in ``directory`` by its hash
    (once: a hash names its content). None when it cannot be written: the gateway runs on, and
    an evidence pack says the document was not kept."""
    target = directory / config_file_name(document_hash(document))
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(document)
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("configuration %s not archived: %s", target.stem, type(exc).__name__)
        return None
    return target


def archived_config(data_dir: str | Path, digest: str) -> Path | None:
    """The kept document of configuration ``digest``, if there is one."""
    if not CONFIG_HASH.fullmatch(digest):
        return None
    path = config_archive(data_dir) / config_file_name(digest)
    return path if path.is_file() else None
