"""``portcullis db upgrade``: apply the migrations to the configured database."""

from __future__ import annotations

import click

from gateway.cli._common import settings_from
from gateway.storage.migrate import upgrade

__all__ = ["db"]


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def upgrade_cmd(ctx: click.Context, revision: str) -> None:
    """Migrate the database to the newest (or the given) revision."""
    settings = settings_from(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url(), revision)
    click.echo(f"database at revision {revision}")
