"""The admin API's reads of the audit trail (role ``auditor``, or the admin token; scoped as
:mod:`gateway.http.audit_query` says): the export, a page of entries, the trail's verification,
and a request's captured content. Each read is itself recorded in the audit trail.

``GET /admin/audit/export?format=csv|jsonl|syslog|otlp&since=&until=&jurisdiction=&user=&team=
&decision=&rule=&backend=&after_seq=&until_seq=`` — streamed in constant memory. The export is
recorded (who, which range, which filter). For a file with a signed manifest that a regulator
can verify offline, use ``portcullis audit export``. The answer's ``x-portcullis-until-seq``
bounds the range; a download cut short (a gateway restarted, a connection lost) resumes with
``after_seq`` (the last whole record's ``seq``) and that ``until_seq``.

``GET /admin/audit/entries?limit=50&before=SEQ&kind=&<the export's filters>`` — a page of
entries, newest first, with ``next_before`` for the older page (the console's audit view;
:mod:`audit.browse`), recorded like an export.

``GET /admin/audit/verify`` — ``portcullis audit verify`` over the running store (every leaf
hash, the Merkle root, the signed checkpoints), in a child process with its own connection, so
neither this process's event loop nor its GIL waits for it (a thread held the loop up to ~90 ms
at a time on 200,000 entries, the child ~4 ms: ``bench/audit/console.py``); one at a time (409
while one runs).

``GET /admin/audit/content/{request_id}`` — the request and answer captured for a request (a
legal-hold obligation), decrypted; every attempt is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from gateway.errors import Cause, GatewayError
from gateway.http.audit_query import (
    EXPORT_FILTERS,
    MAX_SEQ,
    audit_engine,
    may,
    query_filter,
    query_int,
    reader_scope,
)
from gateway.services import Services

__all__ = ["audit_content", "audit_entries", "audit_verify", "export_audit"]


_MEDIA = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "syslog": "text/plain",
    "otlp": "application/x-ndjson",  # OTLP/JSON requests, one per line
}
_EXT = {"csv": "csv", "jsonl": "jsonl", "syslog": "log", "otlp": "otlp.jsonl"}


@get("/admin/audit/export", opt={"role": "auditor"})
async def export_audit(request: Request[Any, Any, Any], state: State) -> Stream:
    from audit.export import stream

    services: Services = state.services
    q = request.query_params
    fmt = q.get("format", "jsonl")
    if fmt not in _MEDIA:
        raise GatewayError(
            Cause.INVALID_PARAMETER, "format: csv, jsonl, syslog or otlp.", param="format"
        )
    unknown = set(q) - {"format", "kind", "after_seq", "until_seq", *EXPORT_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    # kind=key,config (or kind repeated): only those entries (a key's, the catalogue's history)
    kinds = tuple(k for v in q.getall("kind", []) for k in v.split(",") if k)
    flt = query_filter(request, EXPORT_FILTERS, kinds)
    after = query_int(request, "after_seq", 0, 0, MAX_SEQ) or 0
    until = query_int(request, "until_seq", None, 1, MAX_SEQ)
    engine = audit_engine(services)
    try:
        # Authorises and records the export before any byte goes out.
        with may("export the audit trail"):
            bound, chunks = await stream(
                engine,
                fmt,
                flt,
                reader_scope(request),
                allowed_roles=services.settings.audit.export_roles,
                writer=getattr(services.audit, "writer_id", "export:0:0"),
                after_seq=after,
                until_seq=until,
            )
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid export filter: {exc}") from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    # A download, never a page: a browser saves it rather than renders or sniffs it (the CSV's
    # formula cells are neutralised as well; reliability reference E-1).
    name = f"portcullis-audit-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{_EXT[fmt]}"
    headers = {
        "content-disposition": f'attachment; filename="{name}"',
        "x-content-type-options": "nosniff",
        # the range's end: a download cut short resumes with after_seq=<last whole record's
        # seq>&until_seq=<this> and gets the rest of the same range
        "x-portcullis-until-seq": str(bound),
    }
    return Stream(body(), media_type=_MEDIA[fmt], headers=headers)


@get("/admin/audit/entries", opt={"role": "auditor"})
async def audit_entries(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    from audit.browse import MAX_PAGE, browse

    services: Services = state.services
    q = request.query_params
    unknown = set(q) - {"limit", "before", "kind", *EXPORT_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    limit = query_int(request, "limit", 50, 1, MAX_PAGE)
    before = query_int(request, "before", None, 1, MAX_SEQ)
    kinds = tuple(k for v in q.getall("kind", []) for k in v.split(",") if k)
    flt = query_filter(request, EXPORT_FILTERS, kinds)
    with may():
        page = await browse(
            audit_engine(services),
            flt,
            reader_scope(request),
            limit or 50,
            before,
            allowed_roles=services.settings.audit.export_roles,
            writer=getattr(services.audit, "writer_id", "browse:0:0"),
        )
    return page.to_json()


_VERIFYING: set[str] = set()  # the stores being verified now (one at a time each)


@get("/admin/audit/verify", opt={"role": "auditor"})
async def audit_verify(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    engine = audit_engine(services)
    signer = getattr(services.audit, "signer", None)
    if signer is None:
        raise GatewayError(Cause.CONFLICT, "This audit store has no signing key to verify against.")
    with may():
        reader_scope(request).authorise(services.settings.audit.export_roles)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from audit.verify import verify_in_subprocess

    url = engine.url.render_as_string(hide_password=False)
    if url in _VERIFYING:
        raise GatewayError(Cause.CONFLICT, "A verification is already running; try again shortly.")
    pem = signer.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    checkpoints = getattr(services.audit, "checkpoint_dir", None)
    _VERIFYING.add(url)
    try:
        return await verify_in_subprocess(url, pem, str(checkpoints) if checkpoints else None)
    except RuntimeError:
        raise GatewayError(
            Cause.AUDIT_UNAVAILABLE, "The verification could not read the audit store."
        ) from None
    finally:
        _VERIFYING.discard(url)


@get("/admin/audit/content/{request_id:str}", opt={"role": "auditor"})
async def audit_content(
    request_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    """The request and answer captured for ``request_id`` (a legal-hold obligation), decrypted:
    every attempt is a ``content_read`` entry, found or not; 404 when there is none, it is
    outside the reader's jurisdictions, or its tenant's key was destroyed."""
    from audit.export import ExportFilter
    from audit.vault import ContentShredded, ContentVault, read_in_scope

    services: Services = state.services
    try:
        ExportFilter(request_id=request_id)  # an id the log could hold, or a 400
    except ValueError:
        raise GatewayError(
            Cause.INVALID_PARAMETER, "request_id: a request id.", param="request_id"
        ) from None
    engine = audit_engine(services)
    vault = ContentVault.under(
        engine, getattr(services.audit, "writer_id", "content:0:0"), services.secret
    )
    try:
        with may("read captured content"):
            content = await read_in_scope(
                vault,
                engine,
                request_id,
                reader_scope(request),
                services.settings.audit.export_roles,
            )
    except ContentShredded as exc:
        raise GatewayError(Cause.NOT_FOUND, f"No readable content: {exc}.") from None
    return Response(
        content,
        media_type="application/json",
        headers={"cache-control": "no-store", "x-content-type-options": "nosniff"},
    )
