"""Streaming, resumable, signed exports of the log, scoped to the reader.

Rows are read in ``seq`` order a page at a time (keyset pagination), so memory stays constant
however many rows match. After each page the file is flushed and fsynced and a cursor file
(``<out>.cursor``) records the last ``seq`` and byte offset; a killed export resumes from there
(the file is cut back to the cursor's offset first), so the result has no gaps and no duplicates.
The export is bounded by a checkpoint taken when it starts; the finished file gets a signed
manifest (``<out>.manifest.json``) that ``portcullis audit verify`` checks offline. Every export
appends an ``export`` entry (actor, range, filter, scope) to the log itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.canonical import canonical_json
from audit.checkpoint import Checkpoint, Signer, take_checkpoint
from audit.event import KINDS
from audit.formats import csv_header, csv_line, jsonl_line, otlp_line, syslog_line
from audit.schema import audit_log
from audit.shapes import IDENTIFIER_CHARS, is_identifier
from audit.store import append, make_entry, now_ts, parse_utc

__all__ = [
    "AuditForbidden",
    "ExportFilter",
    "ExportResult",
    "Scope",
    "export",
    "file_sha256",
    "iter_rows",
    "manifest_checkpoint",
    "scoped_query",
    "stream",
    "utc_text",
]

_LINES: dict[str, Callable[[int, str, Mapping[str, Any] | None, bytes], bytes]] = {
    "csv": csv_line,
    "jsonl": jsonl_line,
    "syslog": syslog_line,
    "otlp": otlp_line,
}


class AuditForbidden(PermissionError):
    """The caller's roles do not allow this audit action."""


@dataclass(frozen=True)
class Scope:
    """Who is reading: the actor, their roles, and the jurisdictions they may see (None: all).

    A jurisdiction ``AU`` also covers its subdivisions (``AU-NSW``).
    """

    actor: str
    roles: frozenset[str]
    jurisdictions: frozenset[str] | None = None

    def authorise(self, allowed_roles: tuple[str, ...] | frozenset[str]) -> None:
        if not self.roles & set(allowed_roles):
            raise AuditForbidden("this role may not export the audit trail")

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "roles": sorted(self.roles),
            "jurisdictions": None if self.jurisdictions is None else sorted(self.jurisdictions),
        }


_UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def utc_text(value: str) -> str:
    """An ISO 8601 date or date-time (no offset: UTC) as the RFC 3339 UTC text entries store,
    for comparison with ``ts``. ValueError."""
    return parse_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ExportFilter:
    since: str | None = None  # RFC 3339 UTC, inclusive
    until: str | None = None  # exclusive
    jurisdiction: str | None = None
    user: str | None = None
    team: str | None = None
    decision: str | None = None  # allow | deny
    rule: str | None = None
    backend: str | None = None
    request_id: str | None = None  # one request's entries (its intent and outcome)
    # outcomes refused or failed with this error code (address_not_allowed, pii_blocked, ...)
    error_code: str | None = None
    kinds: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        """Refuse what no entry can match, before any query (ValueError names the filter):
        times that are not RFC 3339 UTC text (:func:`utc_text` makes them), names that are not
        identifiers as the record keeps them, an unknown decision or kind. A NUL in a filter
        once reached PostgreSQL, which refused the query mid-export."""
        for name in ("since", "until"):
            v = getattr(self, name)
            if v is not None and not _UTC_TEXT.match(v):
                raise ValueError(f"{name}: an ISO 8601 date or time")
        for name in ("jurisdiction", "user", "team", "rule", "backend", "request_id", "error_code"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, str) and is_identifier(v)):
                raise ValueError(f"{name}: an identifier ({IDENTIFIER_CHARS})")
        if self.decision not in (None, "allow", "deny"):
            raise ValueError("decision: allow or deny")
        if set(self.kinds) - KINDS:
            raise ValueError(f"kind: one or more of {', '.join(sorted(KINDS))}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d

    @property
    def empty(self) -> bool:
        return not any(v for v in asdict(self).values())


def _jurisdiction(col: Any, j: str) -> Any:
    return sa.or_(col == j, col.like(j.replace("%", "").replace("_", "") + "-%"))


def scoped_query(flt: ExportFilter, scope: Scope) -> Any:
    """The WHERE clause of ``flt`` intersected with what ``scope`` may see."""
    c = audit_log.c
    conds: list[Any] = []
    if flt.since:
        conds.append(c.ts >= flt.since)
    if flt.until:
        conds.append(c.ts < flt.until)
    if flt.jurisdiction:
        conds.append(_jurisdiction(c.jurisdiction, flt.jurisdiction))
    if flt.user:
        conds.append(c.user_id == flt.user)
    if flt.team:
        conds.append(c.team == flt.team)
    if flt.decision:
        conds.append(c.decision == flt.decision)
    if flt.rule:
        conds.append(c.rule_ids.contains("," + flt.rule + ",", autoescape=True))
    if flt.backend:
        conds.append(c.backend == flt.backend)
    if flt.request_id:
        conds.append(c.request_id == flt.request_id)
    if flt.error_code:
        # the canonical body's spelling (sorted keys, no spaces): the outcome's own error code
        conds.append(c.body.contains(f'"error_code":"{flt.error_code}"', autoescape=True))
    if flt.kinds:
        conds.append(c.kind.in_(flt.kinds))
    if scope.jurisdictions is not None:
        conds.append(
            sa.or_(*(_jurisdiction(c.jurisdiction, j) for j in scope.jurisdictions))
            if scope.jurisdictions
            else sa.false()
        )
    return sa.and_(sa.true(), *conds)


async def iter_rows(
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    after_seq: int = 0,
    until_seq: int | None = None,
    page: int = 2000,
) -> AsyncIterator[list[tuple[int, str, str | None, bytes]]]:
    """Pages of ``(seq, kind, body, leaf_hash)`` in order, ``after_seq < seq <= until_seq``."""
    where = scoped_query(flt, scope)
    last = after_seq
    while True:
        q = (
            sa.select(audit_log.c.seq, audit_log.c.kind, audit_log.c.body, audit_log.c.leaf_hash)
            .where(where, audit_log.c.seq > last)
            .order_by(audit_log.c.seq)
            .limit(page)
        )
        if until_seq is not None:
            q = q.where(audit_log.c.seq <= until_seq)
        async with engine.connect() as conn:
            rows = [(int(r[0]), r[1], r[2], bytes(r[3])) for r in (await conn.execute(q)).all()]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: Path
    count: int
    until_seq: int
    resumed: bool


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """A file's SHA-256, hex, read a MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


async def _record(engine: AsyncEngine, writer: str, actor: str, action: dict[str, Any]) -> None:
    async with engine.connect() as conn:
        await append(conn, [make_entry("export", {"actor": actor, "action": action}, writer)])


def _scope_text(scope: Scope) -> str:
    """The reader's scope for the log entry: ``AU+KR``, or ``all`` when unscoped (an identifier:
    the record keeps it; ``*`` was dropped as not one)."""
    return "+".join(sorted(scope.jurisdictions)) if scope.jurisdictions is not None else "all"


def _flat(d: Mapping[str, Any]) -> dict[str, Any]:
    """Filter/scope as flat scalars for the log entry's ``action`` (lists joined by ``+``)."""
    return {k: ("+".join(v) if isinstance(v, list) else v) for k, v in d.items()}


async def record_read(
    engine: AsyncEngine, writer: str, scope: Scope, flt: ExportFilter, action: dict[str, Any]
) -> None:
    """Record a read of the trail (an export, a usage report) before it starts: ``action``
    with the filter and the reader's scope, as an ``export`` entry by the reader."""
    filters = _flat({f"filter_{k}": v for k, v in flt.to_json().items()})
    await _record(engine, writer, scope.actor, {**action, **filters, "scope": _scope_text(scope)})


async def export(
    engine: AsyncEngine,
    signer: Signer,
    out: Path,
    fmt: str,
    flt: ExportFilter,
    scope: Scope,
    *,
    allowed_roles: tuple[str, ...] = ("admin", "auditor"),
    checkpoint_dir: Path | None = None,
    writer: str = "export:0:0",
    page: int = 2000,
) -> ExportResult:
    """Export to ``out`` (resuming a killed export of the same file); return what was written."""
    scope.authorise(allowed_roles)
    if fmt not in _LINES:
        raise ValueError("unknown export format")
    line = _LINES[fmt]
    cursor_path = out.with_name(out.name + ".cursor")
    ident = {"format": fmt, "filter": flt.to_json(), "scope": scope.to_json()}
    resumed = cursor_path.exists()
    if resumed:
        cur = json.loads(cursor_path.read_text(encoding="utf-8"))
        if cur["ident"] != ident:
            raise ValueError("a different export of this file is pending; remove its cursor")
        with open(out, "r+b") as fh:
            fh.truncate(cur["offset"])
    else:
        cp = await take_checkpoint(engine, signer, checkpoint_dir)
        cur = {
            "ident": ident,
            "after_seq": 0,
            "offset": 0,
            "count": 0,
            "checkpoint": cp.to_json() if cp else None,
            "until_seq": cp.tree_size if cp else 0,
            "started": now_ts(),
        }
        with open(out, "wb") as fh:
            if fmt == "csv":
                fh.write(csv_header())
            fh.flush()
            os.fsync(fh.fileno())
            cur["offset"] = fh.tell()
        _write_json(cursor_path, cur)
        await record_read(
            engine,
            writer,
            scope,
            flt,
            {"phase": "start", "format": fmt, "until_seq": cur["until_seq"]},
        )
    with open(out, "ab") as fh:
        async for rows in iter_rows(engine, flt, scope, cur["after_seq"], cur["until_seq"], page):
            for seq, kind, body, leaf in rows:
                fh.write(line(seq, kind, json.loads(body) if body else None, leaf))
            fh.flush()
            os.fsync(fh.fileno())
            cur.update(after_seq=rows[-1][0], offset=fh.tell(), count=cur["count"] + len(rows))
            _write_json(cursor_path, cur)
    manifest = {
        "version": 1,
        "file": out.name,
        "format": fmt,
        "bytes": out.stat().st_size,
        "sha256": file_sha256(out),
        "count": cur["count"],
        "last_seq": cur["after_seq"],
        "until_seq": cur["until_seq"],
        "filter": flt.to_json(),
        "scope": scope.to_json(),
        "started": cur["started"],
        "finished": now_ts(),
        "checkpoint": cur["checkpoint"],
        "key_id": signer.key_id,
    }
    manifest["signature"] = signer.sign_bytes(canonical_json(manifest).encode("utf-8"))
    manifest_path = out.with_name(out.name + ".manifest.json")
    _write_json(manifest_path, manifest)
    cursor_path.unlink()
    await _record(
        engine,
        writer,
        scope.actor,
        {
            "phase": "done",
            "format": fmt,
            "count": cur["count"],
            "sha256": manifest["sha256"],
            "until_seq": cur["until_seq"],
        },
    )
    return ExportResult(out, manifest_path, cur["count"], cur["until_seq"], resumed)


def manifest_checkpoint(manifest: Mapping[str, Any]) -> Checkpoint | None:
    cp = manifest.get("checkpoint")
    return Checkpoint.from_json(cp) if cp else None


async def stream(
    engine: AsyncEngine,
    fmt: str,
    flt: ExportFilter,
    scope: Scope,
    *,
    allowed_roles: tuple[str, ...] = ("admin", "auditor"),
    writer: str = "export:0:0",
    page: int = 2000,
    after_seq: int = 0,
    until_seq: int | None = None,
) -> tuple[int, AsyncIterator[bytes]]:
    """The export as a byte stream for an HTTP response (no file, no manifest), and the last
    ``seq`` it can hold.

    Authorises first (raises :class:`AuditForbidden` before anything is yielded), records the
    ``export`` entry, and bounds the stream at the head size when it starts (or ``until_seq``, if
    lower). A download cut short resumes with ``after_seq`` = the last whole record's ``seq`` and
    ``until_seq`` = the bound the first answer gave: the rest of the same range, once each (a CSV
    resumed has no header). Clients that need a signed manifest use :func:`export` instead.
    """
    scope.authorise(allowed_roles)
    if fmt not in _LINES:
        raise ValueError("unknown export format")
    line = _LINES[fmt]
    from audit.store import read_head

    async with engine.connect() as conn:
        until = (await read_head(conn)).size
    if until_seq is not None:
        until = min(until, until_seq)
    action: dict[str, Any] = {"phase": "stream", "format": fmt, "until_seq": until}
    if after_seq:
        action["after_seq"] = after_seq
    await record_read(engine, writer, scope, flt, action)

    async def body() -> AsyncIterator[bytes]:
        if fmt == "csv" and not after_seq:
            yield csv_header()
        async for rows in iter_rows(engine, flt, scope, after_seq, until, page):
            yield b"".join(line(s, k, json.loads(b) if b else None, leaf) for s, k, b, leaf in rows)

    return until, body()
