"""``portcullis audit subject``: which requests held a person's data, and where they went
(:mod:`audit.subjects`). The value is read from standard input or a hidden prompt, never from
the command line (which other users of the machine and the shell's history can read)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter
from audit.store import writer_id
from audit.subjects import find_subject
from gateway.cli._common import settings_from
from gateway.cli.audit import _filter_options, _paths, _reader, _reader_options, _with_engine, audit
from gateway.secrets_store import load_server_secret
from gateway.subjects import known_types, subject_digests

__all__ = ["subject_cmd"]


@audit.command("subject")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="The type the value was found as (AU_TFN, EMAIL_ADDRESS, PERSON, ...; repeatable). "
    "Default: every type the gateway finds.",
)
@click.option("--json", "as_json", is_flag=True, help="The matches and totals as JSON.")
@_filter_options("since", "until")
@_reader_options("searches")
@click.pass_context
def subject_cmd(
    ctx: click.Context,
    types: tuple[str, ...],
    as_json: bool,
    flt: ExportFilter,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
) -> None:
    """Find the requests that held a value (a tax file number, an e-mail address, a name),
    read from standard input or typed at a hidden prompt: when, who asked, what was decided,
    and each backend it reached with what was done to the value there. The search is recorded
    (the types searched, never the value)."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    scope = _reader(actor, roles, scope_j)
    known = known_types(settings)
    unknown = sorted(set(types) - known)
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]} is not a type the gateway finds (e.g. {', '.join(sorted(known)[:6])})",
            param_hint="--type",
        )
    if sys.stdin.isatty():
        value = click.prompt("Value", hide_input=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    secret = load_server_secret(
        settings.data_dir, settings.keys.secret_file, settings.keys.secret_env
    )
    try:
        digests = subject_digests(secret, value, types or known, settings.pii.phone_regions)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="standard input") from None
    del value

    async def work(engine: AsyncEngine) -> Any:
        return await find_subject(
            engine,
            digests,
            flt,
            scope,
            allowed_roles=settings.audit.export_roles,
            writer=writer_id(),
        )

    try:
        matches, totals = _with_engine(url, work)
    except AuditForbidden as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"matches": [m.to_json() for m in matches], "totals": totals}))
        return
    click.echo(
        f"{totals['requests']} request(s) held the value, {totals['forwarded']} of them sent"
        + (" (the newest shown)" if totals["truncated"] else "")
    )
    for m in matches:
        where = "; ".join(
            f"{r['id']} ({r['operator']}, {r['hosting_country']}"
            + (", self-hosted" if r.get("self_hosted") else "")
            + ("" if r["answered"] else ", failed after sending")
            + "): "
            + (", ".join(f"{t} {'/'.join(sorted(a))}" for t, a in r["actions"].items()) or "-")
            for r in m.reached
        )
        click.echo(
            f"{m.ts}  {m.request_id}  {m.user} ({m.jurisdiction})  {m.model}  "
            f"{','.join(m.types) or '-'}"
            + (f" (in the answer: {','.join(m.in_answer)})" if m.in_answer else "")
            + f"  {m.decision} {m.status}"
            + (f" {m.error_code}" if m.error_code else "")
            + (f"  -> {where}" if where else "  -> not sent")
        )
