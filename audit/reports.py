"""The trail's grouped reports by name — ``usage``, ``transfers``, ``denials`` — each read as
its groups and totals (:func:`run_report`), for the command line, the admin API and the
evidence pack alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from audit import denials as _denials
from audit import transfers as _transfers
from audit import usage as _usage
from audit.export import ExportFilter, Scope

__all__ = ["DEFAULT_BY", "run_report"]

# Each report's grouping when none is asked for.
DEFAULT_BY: dict[str, tuple[str, ...]] = {
    "usage": ("team", "model"),
    "transfers": _transfers.DEFAULT_BY,
    "denials": _denials.DEFAULT_BY,
}


async def run_report(
    name: str,
    engine: AsyncEngine,
    flt: ExportFilter,
    scope: Scope,
    by: Sequence[str],
    *,
    allowed_roles: tuple[str, ...] | frozenset[str],
    writer: str,
    citations: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """Report ``name``'s groups and totals (authorised and recorded by the report itself;
    ``citations`` names the denials' government actions)."""
    who: dict[str, Any] = {"allowed_roles": allowed_roles, "writer": writer}
    if name == "denials":
        return await _denials.denials(engine, flt, scope, by, citations=citations, **who)
    if name == "transfers":
        sent = await _transfers.transfers(engine, flt, scope, by, **who)
        return sent, _transfers.totals(sent)
    if name == "usage":
        used = await _usage.usage(engine, flt, scope, by, **who)
        return used, _usage.totals(used)
    raise KeyError(name)
