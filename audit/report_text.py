"""The reports (:mod:`audit.usage`, :mod:`audit.transfers`, :mod:`audit.denials`) as rows of text
cells, for a terminal's table and for CSV (the command line's ``--format``, the admin API's
``format=csv``): the grouping's columns, the report's measures, a totals row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from audit.formats import csv_row

__all__ = ["COLUMNS", "cell", "csv_bytes", "rows_of"]

# Each report's measures, in the order its table shows them.
COLUMNS = {
    "usage": ("requests", "denied", "failed", "forwarded", "purged", "shadowed", "prompt_tokens",
              "completion_tokens", "total_tokens", "cost_microusd"),
    "transfers": ("requests", "answered", "with_personal_data", "uninspectable", "insecure",
                  "purged", "sent_as_is", "protected", "entities"),
    "denials": ("requests", "people", "first", "last", "citations"),
}  # fmt: skip


def _entities_text(entities: Mapping[str, Mapping[str, int]]) -> str:
    """``PERSON allow=3 pseudonymise=12; EMAIL_ADDRESS redact=2`` (``-`` when none)."""
    return (
        "; ".join(
            f"{t} " + " ".join(f"{a}={n}" for a, n in acts.items()) for t, acts in entities.items()
        )
        or "-"
    )


def _citations_text(citations: Sequence[Mapping[str, Any]]) -> str:
    """``au-hao-2025-02-04 (Department of Home Affairs, PSPF direction 001-2025); ...``"""
    parts = []
    for c in citations:
        named = ", ".join(
            str(c[k]) for k in ("authority", "instrument", "effective_date") if k in c
        )
        parts.append(f"{c['id']} ({named})" if named else str(c["id"]))
    return "; ".join(parts) or "-"


def cell(value: Any) -> str:
    """A value of a report as the text of one cell (``-`` for none)."""
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return _entities_text(value)
    if isinstance(value, list):
        return _citations_text(value)
    return str(value)


def rows_of(
    report: str, by: Sequence[str], groups: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]
) -> list[list[str]]:
    """The header, a row per group and (when grouped) a ``total`` row, as text cells."""
    columns = COLUMNS[report]
    names = [*by, *columns]
    out = [names, *([cell(g.get(c)) for c in names] for g in groups)]
    if by:  # without a grouping the one row is the total
        label = ["total"] + [""] * (len(by) - 1)
        out.append([*label, *(cell(totals.get(c)) for c in columns)])
    return out


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    """RFC 4180, every cell quoted, formula triggers neutralised (:func:`audit.formats.csv_row`)."""
    return b"".join(csv_row(list(r)) for r in rows)
