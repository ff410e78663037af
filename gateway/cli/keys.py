"""``portcullis keys create|list|revoke``: API keys and the principals they stand for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from gateway.cli._common import settings_from
from gateway.config import Settings
from gateway.keys import KeyService
from gateway.principal import SECTORS
from gateway.revocations import RedisRevocations
from gateway.secrets_store import load_server_secret
from gateway.storage.db import create_engine_for

__all__ = ["keys"]

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[KeyService], Awaitable[T]]) -> T:
    async def go() -> T:
        secret = load_server_secret(
            settings.data_dir, settings.keys.secret_file, settings.keys.secret_env
        )
        engine = create_engine_for(settings.database_url())
        # With Redis, a revocation is announced to the running replicas (gateway.revocations).
        feed = RedisRevocations(settings.redis.url) if settings.redis.url else None
        try:
            return await work(KeyService(engine, secret, settings.keys.prefix, revocations=feed))
        finally:
            if feed is not None:
                await feed.close()
            await engine.dispose()

    return asyncio.run(go())


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--user", required=True)
@click.option(
    "--jurisdiction", required=True, help="ISO 3166-1 alpha-2 or ISO 3166-2, e.g. AU or AU-NSW"
)
@click.option("--sector", required=True, type=click.Choice(SECTORS))
@click.option("--team", default=None)
@click.option("--role", "roles", multiple=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--description", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(
    ctx: click.Context,
    user: str,
    jurisdiction: str,
    sector: str,
    team: str | None,
    roles: tuple[str, ...],
    tags: tuple[str, ...],
    tenant: str,
    description: str | None,
    as_json: bool,
) -> None:
    """Create a key. It is printed once and cannot be shown again."""
    settings = settings_from(ctx)

    async def work(svc: KeyService) -> dict[str, Any]:
        issued = await svc.create(
            user=user,
            jurisdiction=jurisdiction,
            sector=sector,
            team=team,
            roles=roles,
            tags=tags,
            tenant=tenant,
            description=description,
        )
        record = await svc.get(issued.key_id)
        assert record is not None
        return {"key": issued.key, **record.to_json()}

    try:
        out = _run(settings, work)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(out["key"])
        click.echo(
            f"key id {out['key_id']} for {out['user']} ({out['jurisdiction']}, {out['sector']}); "
            "store it now: it is not shown again.",
            err=True,
        )


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, include_revoked: bool, as_json: bool) -> None:
    """List keys (ids and principals; never the keys themselves)."""
    records = _run(settings_from(ctx), lambda svc: svc.list(include_revoked))
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records]))
        return
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        click.echo(
            f"{r.key_id}\t{state}\t{r.user}\t{r.team or '-'}\t{r.jurisdiction}\t{r.sector}\t"
            f"{','.join(r.roles) or '-'}"
        )


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its id."""
    if not _run(settings_from(ctx), lambda svc: svc.revoke(key_id)):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")
