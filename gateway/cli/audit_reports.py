"""``portcullis audit usage``, ``audit transfers`` and ``audit denials``: reports read from the
trail (:mod:`audit.usage`, :mod:`audit.transfers`, :mod:`audit.denials`), as a table, CSV or
JSON; each read is recorded."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter
from audit.report_text import csv_bytes, rows_of
from audit.store import writer_id
from audit.transfers import DEFAULT_BY
from audit.usage import GROUPS
from gateway.cli._common import settings_from
from gateway.cli.audit import _filter_options, _paths, _reader, _reader_options, _with_engine, audit

__all__ = ["denials_cmd", "transfers_cmd", "usage_cmd"]


def _report_command(name: str, by: str, by_help: str) -> Callable[[Callable[..., Any]], Any]:
    """``audit NAME``: the decorated function takes the context and the trail's filter and
    returns the report's ``read(engine, scope, groups, allowed_roles, writer)`` (its groups and
    totals); the command adds the options every report takes — the filter, ``--by`` (default
    ``by``), ``--format`` and who reads it — and prints what ``read`` gives."""

    def wrap(reader: Callable[[click.Context, ExportFilter], Any]) -> Any:
        @functools.wraps(reader)
        def command(
            ctx: click.Context,
            flt: ExportFilter,
            by: str,
            fmt: str,
            actor: str | None,
            roles: tuple[str, ...],
            scope_j: tuple[str, ...],
        ) -> None:
            _report(ctx, by, fmt, name, actor, roles, scope_j, reader(ctx, flt))

        f: Any = click.pass_context(command)
        f = _reader_options("reads")(f)
        f = click.option(
            "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table"
        )(f)
        f = click.option("--by", default=by, show_default=True, help=by_help)(f)
        f = _filter_options("since", "until")(f)
        return audit.command(name)(f)

    return wrap


_GROUPS_HELP = f"Group by, comma-separated: {', '.join(GROUPS)} ('' for one total)."


def _report(
    ctx: click.Context,
    by: str,
    fmt: str,
    report: str,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
    read: Callable[..., Awaitable[tuple[Any, dict[str, Any]]]],
) -> None:
    """Run ``read(engine, scope, groups, allowed_roles, writer)`` (its groups and totals) and
    print them."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    groups = tuple(b.strip() for b in by.split(",") if b.strip())
    scope = _reader(actor, roles, scope_j)

    async def work(engine: AsyncEngine) -> Any:
        return await read(engine, scope, groups, settings.audit.export_roles, writer_id())

    try:
        rows, total = _with_engine(url, work)
    except AuditForbidden as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    out = [r.to_json() for r in rows]
    if fmt == "json":
        click.echo(json.dumps({"by": list(groups), "groups": out, "totals": total}))
        return
    lines = rows_of(report, groups, out, total)
    if fmt == "csv":
        click.echo(csv_bytes(lines).decode(), nl=False)
        return
    for cells in lines:
        click.echo("\t".join(cells))


@_report_command("usage", "team,model", _GROUPS_HELP)
def usage_cmd(ctx: click.Context, flt: ExportFilter) -> Any:
    """Requests, denials, failures and tokens per group, from the requests' audit entries."""
    from audit.usage import totals, usage

    async def read(engine: AsyncEngine, scope: Any, groups: Any, allowed: Any, writer: str) -> Any:
        rows = await usage(engine, flt, scope, groups, allowed_roles=allowed, writer=writer)
        return rows, totals(rows)

    return read


@_report_command("transfers", ",".join(DEFAULT_BY), _GROUPS_HELP)
def transfers_cmd(ctx: click.Context, flt: ExportFilter) -> Any:
    """Where the forwarded requests went (operator, hosting country, ...) and the personal data
    in them, per type and what was done to it: the register of transfers."""
    from audit.transfers import totals, transfers

    async def read(engine: AsyncEngine, scope: Any, groups: Any, allowed: Any, writer: str) -> Any:
        rows = await transfers(engine, flt, scope, groups, allowed_roles=allowed, writer=writer)
        return rows, totals(rows)

    return read


@_report_command(
    "denials",
    "rule,jurisdiction",
    "Group by, comma-separated: rule (the denying rule) and the usage report's groups "
    "('' for one total).",
)
def denials_cmd(ctx: click.Context, flt: ExportFilter) -> Any:
    """Which rules denied requests: per rule, the requests, the people who asked, first and
    last, and the government actions cited (the configured policy bundle names them)."""
    from audit.denials import denials
    from gateway.policy.bundle import citations_for

    policy = settings_from(ctx).policy
    known = citations_for(policy.bundle, policy.overlays)

    async def read(engine: AsyncEngine, scope: Any, groups: Any, allowed: Any, writer: str) -> Any:
        return await denials(
            engine, flt, scope, groups, citations=known, allowed_roles=allowed, writer=writer
        )

    return read
