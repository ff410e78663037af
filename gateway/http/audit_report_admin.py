"""The admin API's reports of the audit trail and its data-subject search (role ``auditor``, or
the admin token; scoped as :mod:`gateway.http.audit_query` says). Each is recorded in the audit
trail like an export.

``GET /admin/audit/usage?by=team,model&since=&until=&jurisdiction=&user=&team=&decision=
&backend=`` — requests, denials, failures and tokens per group (:mod:`audit.usage`).

``GET /admin/audit/transfers?by=jurisdiction,operator,hosting_country,self_hosted&<the same
filters>`` — where the forwarded requests went and the personal data in them per type and
action (:mod:`audit.transfers`).

``GET /admin/audit/denials?by=rule,jurisdiction&<the same filters>`` — per denying rule the
requests refused, the people who asked, first and last, and the government actions cited, named
from the configured policy bundle (:mod:`audit.denials`).

``POST /admin/audit/subjects`` — the entries that name a data subject (:mod:`audit.subjects`),
the value searched for in the body, never in a URL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from gateway.errors import Cause, GatewayError
from gateway.http.audit_query import (
    REPORT_FILTERS,
    audit_engine,
    filter_of,
    may,
    query_filter,
    reader_scope,
)
from gateway.services import Services

__all__ = ["audit_denials", "audit_subjects", "audit_transfers", "audit_usage"]


async def _report(request: Request[Any, Any, Any], state: State, report: str) -> Any:
    """A grouped report of the trail (:func:`audit.reports.run_report`): the query's grouping
    and filters, the caller's scope; the report records the read. JSON, or with ``format=csv``
    a CSV download of the table the command line prints (every cell quoted, formula triggers
    neutralised)."""
    from audit.report_text import csv_bytes, rows_of
    from audit.reports import DEFAULT_BY, run_report

    services: Services = state.services
    q = request.query_params
    unknown = set(q) - {"by", "format", *REPORT_FILTERS}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    fmt = q.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise GatewayError(Cause.INVALID_PARAMETER, "Invalid format: json or csv.", param="format")
    by = tuple(b for b in q.get("by", ",".join(DEFAULT_BY[report])).split(",") if b)
    flt = query_filter(request, REPORT_FILTERS, ())
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
                audit_engine(services),
                flt,
                reader_scope(request),
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
    unknown = set(body) - {"value", "types", *REPORT_FILTERS}
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
    flt = filter_of({k: body[k] for k in REPORT_FILTERS if body.get(k) is not None})
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
            audit_engine(services),
            digests,
            flt,
            reader_scope(request),
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
