"""``portcullis audit usage``, ``audit transfers`` and ``audit denials``: reports read from the
trail (:mod:`audit.usage`, :mod:`audit.transfers`, :mod:`audit.denials`), as a table, CSV or
JSON; each read is recorded."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter, Scope
from audit.report_text import csv_bytes, rows_of
from audit.reports import DEFAULT_BY, run_report
from audit.store import writer_id
from audit.usage import GROUPS
from gateway.cli._common import settings_from
from gateway.cli.audit import _filter_options, _paths, _reader, _reader_options, _with_engine, audit

__all__ = ["denials_cmd", "transfers_cmd", "usage_cmd"]


def _report_command(name: str, by_help: str) -> Callable[[Callable[..., Any]], Any]:
    """``audit NAME`` for the report of that name (:func:`audit.reports.run_report`), its help
    the decorated function's docstring, with the options every report takes: the trail's
    filter, ``--by`` (default: the report's), ``--format`` and who reads it."""

    def wrap(described: Callable[..., Any]) -> Any:
        @functools.wraps(described)
        def command(
            ctx: click.Context,
            flt: ExportFilter,
            by: str,
            fmt: str,
            actor: str | None,
            roles: tuple[str, ...],
            scope_j: tuple[str, ...],
        ) -> None:
            _report(ctx, name, flt, by, fmt, _reader(actor, roles, scope_j))

        f: Any = click.pass_context(command)
        f = _reader_options("reads")(f)
        f = click.option(
            "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table"
        )(f)
        default = ",".join(DEFAULT_BY[name])
        f = click.option("--by", default=default, show_default=True, help=by_help)(f)
        f = _filter_options("since", "until")(f)
        return audit.command(name)(f)

    return wrap


_GROUPS_HELP = f"Group by, comma-separated: {', '.join(GROUPS)} ('' for one total)."


def _report(
    ctx: click.Context, report: str, flt: ExportFilter, by: str, fmt: str, scope: Scope
) -> None:
    """Run the report and print its groups and totals."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    groups = tuple(b.strip() for b in by.split(",") if b.strip())
    citations = None
    if report == "denials":
        from gateway.policy.bundle import citations_for

        policy = settings.policy
        citations = citations_for(policy.bundle, policy.overlays)

    async def work(engine: AsyncEngine) -> Any:
        return await run_report(
            report,
            engine,
            flt,
            scope,
            groups,
            allowed_roles=settings.audit.export_roles,
            writer=writer_id(),
            citations=citations,
        )

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


@_report_command("usage", _GROUPS_HELP)
def usage_cmd() -> None:
    """Requests, denials, failures and tokens per group, from the requests' audit entries."""


@_report_command("transfers", _GROUPS_HELP)
def transfers_cmd() -> None:
    """Where the forwarded requests went (operator, hosting country, ...) and the personal data
    in them, per type and what was done to it: the register of transfers."""


@_report_command(
    "denials",
    "Group by, comma-separated: rule (the denying rule) and the usage report's groups "
    "('' for one total).",
)
def denials_cmd() -> None:
    """Which rules denied requests: per rule, the requests, the people who asked, first and
    last, and the government actions cited (the configured policy bundle names them)."""
