"""``portcullis audit content REQUEST_ID``: read a request's captured content (audit.vault)."""

from __future__ import annotations

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import AuditForbidden
from audit.store import writer_id
from audit.vault import ContentShredded, ContentVault, read_in_scope
from gateway.cli._common import settings_from
from gateway.cli.audit import _paths, _reader, _reader_options, _with_engine, audit
from gateway.secrets_store import load_server_secret

__all__ = ["content_cmd"]


@audit.command("content")
@click.argument("request_id")
@_reader_options("reads")
@click.pass_context
def content_cmd(
    ctx: click.Context,
    request_id: str,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
) -> None:
    """Print the request and answer captured for REQUEST_ID (JSON); the read is recorded."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    scope = _reader(actor, roles, scope_j)

    secret = load_server_secret(
        settings.data_dir, settings.keys.secret_file, settings.keys.secret_env
    )

    async def work(engine: AsyncEngine) -> bytes:
        vault = ContentVault.under(engine, writer_id(), secret)
        return await read_in_scope(vault, engine, request_id, scope, settings.audit.export_roles)

    try:
        content = _with_engine(url, work)
    except AuditForbidden as exc:
        raise click.ClickException(str(exc)) from None
    except ContentShredded as exc:
        raise click.ClickException(f"no readable content: {exc}") from None
    click.echo(content.decode("utf-8"))
