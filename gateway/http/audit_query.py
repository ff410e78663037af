"""What the admin API's audit routes share: the reader's scope, the trail's filter from a query
or a body, a whole number from the query, the store's engine, and the 403 that says what a role
may not do.

An auditor's key sees only the rows of its own jurisdiction (``AU`` covers ``AU-NSW``) plus any
jurisdictions named in ``audit-scope:<CC>`` tags; the tag ``audit-scope:all`` or the admin token
sees every row."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from litestar import Request

from gateway.errors import Cause, GatewayError
from gateway.principal import Principal
from gateway.services import Services

__all__ = [
    "EXPORT_FILTERS",
    "MAX_SEQ",
    "REPORT_FILTERS",
    "audit_engine",
    "filter_of",
    "may",
    "query_filter",
    "query_int",
    "reader_scope",
]


@contextlib.contextmanager
def may(what: str = "read the audit trail") -> Iterator[None]:
    """A reader whose role may not (:class:`audit.export.AuditForbidden`) gets the 403 that
    says what it may not do."""
    from audit.export import AuditForbidden

    try:
        yield
    except AuditForbidden:
        raise GatewayError(Cause.FORBIDDEN, f"This role may not {what}.") from None


MAX_SEQ = 2**62  # a log position the query may name (audit_log.seq is a 64-bit integer)
EXPORT_FILTERS = (
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
# the reports take the export's filters but a rule and a request id (they group by rule)
REPORT_FILTERS = tuple(f for f in EXPORT_FILTERS if f not in ("rule", "request_id"))


def query_filter(
    request: Request[Any, Any, Any], names: tuple[str, ...], kinds: tuple[str, ...]
) -> Any:
    """The export's filter from the query (400 naming the filter no entry can match)."""
    q = request.query_params
    return filter_of({k: q[k] for k in names if q.get(k)}, kinds)


def filter_of(values: dict[str, Any], kinds: tuple[str, ...] = ()) -> Any:
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


def audit_engine(services: Services) -> Any:
    """The audit store's database engine (409 for a store that has none)."""
    engine = getattr(services.audit, "engine", None)
    if engine is None:
        raise GatewayError(Cause.CONFLICT, "This audit store cannot export.")
    return engine


def reader_scope(request: Request[Any, Any, Any]) -> Any:
    """Who reads and which jurisdictions' rows they see (:class:`audit.export.Scope`)."""
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


def query_int(
    request: Request[Any, Any, Any], name: str, default: int | None, low: int, high: int
) -> int | None:
    """The query's ``name`` as a whole number from ``low`` to ``high`` (400 otherwise), or
    ``default`` when it is absent or empty."""
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
