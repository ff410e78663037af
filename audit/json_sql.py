"""SQL over the audit entries' JSON bodies, for SQLite (``json_extract``, ``json_each``) and
PostgreSQL (``jsonb``): the reports (:mod:`audit.usage`, :mod:`audit.transfers`,
:mod:`audit.denials`) group and sum in the database, so no body leaves it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from audit.schema import audit_log

__all__ = ["COLUMNS", "array_length", "count_of", "entries", "items", "json_at", "members",
           "non_empty_list", "number_at", "strings", "text_at"]  # fmt: skip

# The indexed columns a report groups by, under the names of its groups.
COLUMNS = {
    "user": audit_log.c.user_id,
    "team": audit_log.c.team,
    "tenant": audit_log.c.tenant,
    "jurisdiction": audit_log.c.jurisdiction,
    "backend": audit_log.c.backend,
    "decision": audit_log.c.decision,
}


def entries(dialect: str, *where: Any) -> Any:
    """The entries ``where`` selects as a subquery: ``kind``, ``ts``, the :data:`COLUMNS` under
    their group names, and the body parsed once per entry as ``doc`` (PostgreSQL's ``jsonb``;
    ``OFFSET 0`` keeps the planner from inlining the cast into every use of it)."""
    c = audit_log.c
    doc = sa.cast(c.body, JSONB) if dialect == "postgresql" else c.body
    return (
        sa.select(c.kind, c.ts, *(col.label(n) for n, col in COLUMNS.items()), doc.label("doc"))
        .where(*where)
        .offset(0)
        .subquery()
    )


def text_at(dialect: str, doc: Any, *path: str) -> Any:
    """A field of the entry's JSON body as text (NULL when absent or purged)."""
    if dialect == "postgresql":
        return sa.func.jsonb_extract_path_text(doc, *path)
    return sa.cast(sa.func.json_extract(doc, "$." + ".".join(path)), sa.Text)


def number_at(dialect: str, doc: Any, *path: str) -> Any:
    """A whole-number field of the body (0 when absent, purged or not a number)."""
    text = text_at(dialect, doc, *path)
    pg = dialect == "postgresql"
    digits = text.op("~")("^[0-9]{1,18}$") if pg else text.op("GLOB")("[0-9]*")
    return sa.case((digits, sa.cast(text, sa.BigInteger)), else_=0)


def json_at(dialect: str, doc: Any, *path: str) -> Any:
    """The body's JSON value at ``path`` (NULL when absent)."""
    if dialect == "postgresql":
        return sa.func.jsonb_extract_path(doc, *path)
    return sa.func.json_extract(doc, "$." + ".".join(path))


def members(dialect: str, obj: Any) -> Any:
    """The members of a JSON object as a table (``key``, ``value``); no rows when ``obj`` is
    NULL or not an object."""
    if dialect == "postgresql":
        safe = sa.case(
            (sa.func.jsonb_typeof(obj) == "object", obj), else_=sa.cast(sa.literal("{}"), JSONB)
        )
        return sa.func.jsonb_each(safe).table_valued("key", "value")
    safe = sa.case((sa.func.json_type(obj) == "object", obj), else_="{}")
    return sa.func.json_each(safe).table_valued("key", "value")


def count_of(dialect: str, value: Any) -> Any:
    """A member's value as a whole number (0 when it is not one)."""
    if dialect == "postgresql":
        text = sa.cast(value, sa.Text)
        return sa.case((text.op("~")("^[0-9]{1,18}$"), sa.cast(text, sa.BigInteger)), else_=0)
    return sa.case((sa.func.typeof(value) == "integer", value), else_=0)


def items(dialect: str, arr: Any) -> Any:
    """The items of a JSON array as a table (``value``); no rows when ``arr`` is NULL or not an
    array."""
    if dialect == "postgresql":
        safe = sa.case(
            (sa.func.jsonb_typeof(arr) == "array", arr), else_=sa.cast(sa.literal("[]"), JSONB)
        )
        return sa.func.jsonb_array_elements(safe).table_valued("value")
    safe = sa.case((sa.func.json_type(arr) == "array", arr), else_="[]")
    return sa.func.json_each(safe).table_valued("value")


def array_length(dialect: str, doc: Any, *path: str) -> Any:
    """The length of the body's array at ``path`` (0 when absent or not an array)."""
    value = json_at(dialect, doc, *path)
    kind, length = (
        (sa.func.jsonb_typeof, sa.func.jsonb_array_length)
        if dialect == "postgresql"
        else (sa.func.json_type, sa.func.json_array_length)
    )
    # CASE, not AND: PostgreSQL may evaluate either side of an AND first, and the length of a
    # value that is not an array is an error there
    return sa.case((kind(value) == "array", length(value)), else_=0)


def non_empty_list(dialect: str, doc: Any, *path: str) -> Any:
    """Whether the body's value at ``path`` is an array with at least one item."""
    return array_length(dialect, doc, *path) > 0


def strings(dialect: str, arr: Any) -> Any:
    """The strings of a JSON array of strings as a table (``value``, text); no rows when ``arr``
    is NULL or not an array."""
    if dialect == "postgresql":
        safe = sa.case(
            (sa.func.jsonb_typeof(arr) == "array", arr), else_=sa.cast(sa.literal("[]"), JSONB)
        )
        return sa.func.jsonb_array_elements_text(safe).table_valued("value")
    return items(dialect, arr)
