"""Admin routes for audit exports, streamed in constant memory, and usage reports.

``GET /admin/audit/export?format=csv|jsonl|syslog|otlp&since=&until=&jurisdiction=&user=&team=
&decision=&rule=&backend=&after_seq=&until_seq=`` — role ``auditor`` (or the admin token). An
auditor's key sees only the rows of its own jurisdiction (``AU`` covers ``AU-NSW``) plus any
jurisdictions named in ``audit-scope:<CC>`` tags; the tag ``audit-scope:all`` or the admin token
sees every row. The export is itself recorded in the audit trail (who, which range, which filter).
For a file with a signed manifest that a regulator can verify offline, use ``portcullis audit
export``. The answer's ``x-portcullis-until-seq`` bounds the range; a download cut short (a gateway
restarted, a connection lost) resumes with ``after_seq`` (the last whole record's ``seq``) and that
``until_seq``.

``GET /admin/audit/usage?by=team,model&since=&until=&jurisdiction=&user=&team=&decision=
&backend=`` — the same role and scope: requests, denials, failures and tokens per group
(:mod:`audit.usage`), recorded like an export.

``GET /admin/audit/transfers?by=jurisdiction,operator,hosting_country,self_hosted&<the same
filters>`` — the same role and scope: where the forwarded requests went and the personal data in
them per type and action (:mod:`audit.transfers`), recorded like an export.

``GET /admin/audit/denials?by=rule,jurisdiction&<the same filters>`` — the same role and scope:
per denying rule the requests refused, the people who asked, first and last, and the government
actions cited, named from the configured policy bundle (:mod:`audit.denials`).

``GET /admin/audit/entries?limit=50&before=SEQ&kind=&<the export's filters>`` — the same role and
scope: a page of entries, newest first, with ``next_before`` for the older page (the console's
audit view; :mod:`audit.browse`), recorded like an export.

``GET /admin/audit/verify`` — the same role: ``portcullis audit verify`` over the running store
(every leaf hash, the Merkle root, the signed checkpoints), in a child process with its own
connection, so neither this process's event loop nor its GIL waits for it (a thread held the
loop up to ~90 ms at a time on 200,000 entries, the child ~4 ms: ``bench/audit/console.py``);
one at a time (409 while one runs).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from gateway.errors import Cause, GatewayError
from gateway.principal import Principal
from gateway.services import Services

__all__ = ["AUDIT_HANDLERS"]


@contextlib.contextmanager
def may(what: str = "read the audit trail") -> Iterator[None]:
    """A reader whose role may not (:class:`audit.export.AuditForbidden`) gets the 403 that
    says what it may not do."""
    from audit.export import AuditForbidden

    try:
        yield
    except AuditForbidden:
        raise GatewayError(Cause.FORBIDDEN, f"This role may not {what}.") from None


_MEDIA = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "syslog": "text/plain",
    "otlp": "application/x-ndjson",  # OTLP/JSON requests, one per line
}
_EXT = {"csv": "csv", "jsonl": "jsonl", "syslog": "log", "otlp": "otlp.jsonl"}
_MAX_SEQ = 2**62  # a log position the query may name (audit_log.seq is a 64-bit integer)
_FILTERS = (
    "since",
    "until",
    "jurisdiction",
    "user",
    "team",
    "decision",
    "rule",
    "backend",
    "request_id",
    "error_code",
)


def _filter(request: Request[Any, Any, Any], names: tuple[str, ...], kinds: tuple[str, ...]) -> Any:
    """The export's filter from the query (400 naming the filter no entry can match)."""
    q = request.query_params
    return _filter_of({k: q[k] for k in names if q.get(k)}, kinds)


def _filter_of(values: dict[str, Any], kinds: tuple[str, ...] = ()) -> Any:
    """The export's filter from named values, a query's or a body's (400 naming the filter that
    is not text or that no entry can match)."""
    from audit.export import ExportFilter, utc_text

    try:
        for name, value in values.items():
            if not isinstance(value, str):
                raise ValueError(f"{name}: text")
        for name in ("since", "until"):
            if name in values:
                try:
                    values[name] = utc_text(values[name])
                except ValueError:
                    raise ValueError(f"{name}: an ISO 8601 date or time") from None
        return ExportFilter(**values, kinds=kinds)
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"Invalid export filter: {exc}.", param=name
        ) from None


def _engine(services: Services) -> Any:
    engine = getattr(services.audit, "engine", None)
    if engine is None:
        raise GatewayError(Cause.CONFLICT, "This audit store cannot export.")
    return engine


def _scope(request: Request[Any, Any, Any]) -> Any:
    from audit.export import Scope

    principal: Principal | None = request.scope["state"].get("admin_principal")
    if principal is None:  # the admin token
        return Scope(actor="admin-token", roles=frozenset({"admin"}), jurisdictions=None)
    extra = {t.split(":", 1)[1] for t in principal.tags if t.startswith("audit-scope:")}
    # "all" ("*" was documented first, but a tag cannot hold it: kept for any record that does)
    unscoped = bool(extra & {"all", "*"})
    jurisdictions = None if unscoped else frozenset({principal.jurisdiction, *extra})
    return Scope(
        actor=principal.key_id, roles=frozenset(principal.roles), jurisdictions=jurisdictions
    )


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
    unknown = set(q) - {"format", "kind", "after_seq", "until_seq", *_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    # kind=key,config (or kind repeated): only those entries (a key's, the catalogue's history)
    kinds = tuple(k for v in q.getall("kind", []) for k in v.split(",") if k)
    flt = _filter(request, _FILTERS, kinds)
    after = _int(request, "after_seq", 0, 0, _MAX_SEQ) or 0
    until = _int(request, "until_seq", None, 1, _MAX_SEQ)
    engine = _engine(services)
    try:
        # Authorises and records the export before any byte goes out.
        with may("export the audit trail"):
            bound, chunks = await stream(
                engine,
                fmt,
                flt,
                _scope(request),
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


# the reports take the export's filters but a rule and a request id (they group by rule)
_USAGE_FILTERS = tuple(f for f in _FILTERS if f not in ("rule", "request_id"))


async def _report(request: Request[Any, Any, Any], state: State, report: str) -> Any:
    """A grouped report of the trail (:func:`audit.reports.run_report`): the query's grouping
    and filters, the caller's scope; the report records the read. JSON, or with ``format=csv``
    a CSV download of the table the command line prints (every cell quoted, formula triggers
    neutralised)."""
    from audit.report_text import csv_bytes, rows_of
    from audit.reports import DEFAULT_BY, run_report

    services: Services = state.services
    q = request.query_params
    unknown = set(q) - {"by", "format", *_USAGE_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    fmt = q.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise GatewayError(Cause.INVALID_PARAMETER, "Invalid format: json or csv.", param="format")
    by = tuple(b for b in q.get("by", ",".join(DEFAULT_BY[report])).split(",") if b)
    flt = _filter(request, _USAGE_FILTERS, ())
    citations = None
    if report == "denials":
        from gateway.policy.bundle import citations_for

        policy = services.settings.policy
        # the running configuration's bundle names the citations (read per report: a few ms)
        citations = citations_for(policy.bundle, policy.overlays)
    try:
        with may():
            rows, totals = await run_report(
                report,
                _engine(services),
                flt,
                _scope(request),
                by,
                allowed_roles=services.settings.audit.export_roles,
                writer=getattr(services.audit, "writer_id", "usage:0:0"),
                citations=citations,
            )
    except ValueError as exc:
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"Invalid grouping: {exc}.", param="by"
        ) from None
    groups = [r.to_json() for r in rows]
    if fmt == "json":
        return {"by": list(by), "groups": groups, "totals": totals}
    name = f"portcullis-{report}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
    return Response(
        content=csv_bytes(rows_of(report, by, groups, totals)),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{name}"',
            "x-content-type-options": "nosniff",
        },
    )


@get("/admin/audit/usage", opt={"role": "auditor"})
async def audit_usage(request: Request[Any, Any, Any], state: State) -> Any:
    return await _report(request, state, "usage")


@get("/admin/audit/transfers", opt={"role": "auditor"})
async def audit_transfers(request: Request[Any, Any, Any], state: State) -> Any:
    return await _report(request, state, "transfers")


@get("/admin/audit/denials", opt={"role": "auditor"})
async def audit_denials(request: Request[Any, Any, Any], state: State) -> Any:
    return await _report(request, state, "denials")


def _int(
    request: Request[Any, Any, Any], name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # the length first: int() of thousands of digits raises (CPython's conversion limit)
    if (
        not raw.isascii()
        or not raw.isdigit()
        or len(raw) > len(str(high))
        or not low <= int(raw) <= high
    ):
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"{name}: a whole number from {low} to {high}.", param=name
        )
    return int(raw)


@get("/admin/audit/entries", opt={"role": "auditor"})
async def audit_entries(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    from audit.browse import MAX_PAGE, browse

    services: Services = state.services
    q = request.query_params
    unknown = set(q) - {"limit", "before", "kind", *_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    limit = _int(request, "limit", 50, 1, MAX_PAGE)
    before = _int(request, "before", None, 1, _MAX_SEQ)
    kinds = tuple(k for v in q.getall("kind", []) for k in v.split(",") if k)
    flt = _filter(request, _FILTERS, kinds)
    with may():
        page = await browse(
            _engine(services),
            flt,
            _scope(request),
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
    engine = _engine(services)
    signer = getattr(services.audit, "signer", None)
    if signer is None:
        raise GatewayError(Cause.CONFLICT, "This audit store has no signing key to verify against.")
    with may():
        _scope(request).authorise(services.settings.audit.export_roles)
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
    engine = _engine(services)
    vault = ContentVault.under(
        engine, getattr(services.audit, "writer_id", "content:0:0"), services.secret
    )
    try:
        with may("read captured content"):
            content = await read_in_scope(
                vault, engine, request_id, _scope(request), services.settings.audit.export_roles
            )
    except ContentShredded as exc:
        raise GatewayError(Cause.NOT_FOUND, f"No readable content: {exc}.") from None
    return Response(
        content,
        media_type="application/json",
        headers={"cache-control": "no-store", "x-content-type-options": "nosniff"},
    )


@post("/admin/audit/subjects", opt={"role": "auditor"}, status_code=200)
async def audit_subjects(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The data-subject search (:mod:`audit.subjects`): ``{"value": "...", "types"?: [...],
    "since"?, "until"?, "jurisdiction"?, "user"?, "team"?, "decision"?, "backend"?}`` — a POST,
    so that the value is in no URL, proxy log or browser history. The same role and scope as the
    reports; recorded like them, with the types searched and never the value."""
    from audit.subjects import find_subject
    from gateway.http.admin_call import json_body
    from gateway.subjects import known_types, subject_digests

    services: Services = state.services
    body = await json_body(request, 3)
    unknown = set(body) - {"value", "types", *_USAGE_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(unknown)[0]}'.")
    value, types = body.get("value"), body.get("types")
    if not isinstance(value, str):
        raise GatewayError(Cause.INVALID_PARAMETER, "value: the text to search for.", param="value")
    known = known_types(services.settings)
    if types is not None and (
        not isinstance(types, list) or not all(isinstance(t, str) for t in types)
    ):
        raise GatewayError(Cause.INVALID_PARAMETER, "types: a list of type names.", param="types")
    strange = sorted(set(types or ()) - known)
    if strange:  # named only when it is shaped like a type: a value typed there is not echoed
        named = f"'{strange[0]}'" if re.fullmatch(r"[A-Z][A-Z0-9_]{1,39}", strange[0]) else "one"
        raise GatewayError(
            Cause.INVALID_PARAMETER,
            f"types: {named} is not a type the gateway finds.",
            param="types",
        )
    flt = _filter_of({k: body[k] for k in _USAGE_FILTERS if body.get(k) is not None})
    try:
        digests = subject_digests(
            services.secret, value, types or known, services.settings.pii.phone_regions
        )
    except ValueError as exc:
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"Invalid search: {exc}.", param="value"
        ) from None
    del value, body
    with may():
        matches, totals = await find_subject(
            _engine(services),
            digests,
            flt,
            _scope(request),
            allowed_roles=services.settings.audit.export_roles,
            writer=getattr(services.audit, "writer_id", "subject:0:0"),
        )
    return {
        "matches": [m.to_json() for m in matches],
        "totals": totals,
        "types_searched": sorted(set(digests.values())),
        # whether this gateway keeps digests now (audit.record_subject_digests, PII inspection on)
        "indexing": services.settings.audit.record_subject_digests and services.pii is not None,
    }


AUDIT_HANDLERS = [
    audit_subjects,
    export_audit,
    audit_usage,
    audit_transfers,
    audit_denials,
    audit_entries,
    audit_verify,
    audit_content,
]
