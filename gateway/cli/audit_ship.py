"""``portcullis audit ship``: the trail to an OTLP/HTTP log backend, at least once (audit.ship)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden, ExportFilter
from audit.ship import Destination, ShipRefused, ShipResult, ship
from audit.store import writer_id
from gateway.cli._common import settings_from
from gateway.cli.audit import _filter_options, _paths, _reader, _reader_options, audit

__all__ = ["ship_cmd"]


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    """``NAME=VARIABLE`` pairs: each header's value is read from the environment, so that a
    token is never on the command line (or in a process listing)."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, var = item.partition("=")
        if not sep or not name.strip() or not var.strip():
            raise click.BadParameter(f"NAME=VARIABLE, got {item!r}", param_hint="--header")
        value = os.environ.get(var.strip())
        if not value:
            raise click.BadParameter(
                f"the variable {var.strip()} is not set or empty", param_hint="--header"
            )
        out[name.strip()] = value
    return out


@audit.command("ship")
@click.option(
    "--to", "to", required=True, help="OTLP/HTTP logs endpoint, e.g. http://collector:4318/v1/logs."
)
@click.option(
    "--cursor",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the last shipped seq is kept (default: <data_dir>/audit/ship.cursor).",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    help="NAME=VARIABLE: send header NAME with the value of environment variable VARIABLE.",
)
@click.option("--follow", is_flag=True, help="Keep shipping new entries until SIGTERM/SIGINT.")
@click.option(
    "--interval", default=2.0, show_default=True, help="Seconds between polls (--follow)."
)
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--give-up",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Tries per batch before stopping (without --follow; following tries forever).",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per HTTP request.")
@_filter_options("kinds")
@_reader_options("ships")
@click.pass_context
def ship_cmd(
    ctx: click.Context,
    to: str,
    cursor: Path | None,
    headers: tuple[str, ...],
    follow: bool,
    interval: float,
    batch: int,
    give_up: int,
    timeout: float,
    flt: ExportFilter,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
) -> None:
    """Post the trail's entries after the cursor to an OTLP/HTTP receiver, at least once."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    try:
        dest = Destination(to, _headers(headers))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    cursor = cursor or Path(settings.data_dir) / "audit" / "ship.cursor"
    cursor.parent.mkdir(parents=True, exist_ok=True)
    scope = _reader(actor, roles, scope_j)

    async def go() -> ShipResult:
        from audit.db import open_engine

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine: AsyncEngine = open_engine(url)
        try:
            return await ship(
                engine,
                dest,
                cursor,
                flt,
                scope,
                allowed_roles=settings.audit.export_roles,
                writer=writer_id(),
                batch=batch,
                follow=follow,
                interval_s=interval,
                give_up=give_up,
                stop=stop,
                timeout_s=timeout,
            )
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(go())
    except (AuditForbidden, ShipRefused, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    summary: dict[str, Any] = {
        "destination": dest.host,
        "count": result.count,
        "batches": result.batches,
        "rejected": result.rejected,
        "last_seq": result.last_seq,
        "cursor": str(cursor),
    }
    click.echo(json.dumps(summary))
