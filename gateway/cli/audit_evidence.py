"""``portcullis audit evidence --out DIR``: an evidence pack for a period (:mod:`audit.evidence`):
the trail, the usage, transfers and denials reports, the verification, the policy bundle and
configuration in force, signed; ``portcullis audit verify --evidence DIR`` checks one offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.evidence import write_pack
from audit.export import AuditForbidden, ExportFilter
from audit.store import writer_id
from gateway.cli._common import settings_from
from gateway.cli.audit import _filter_options, _paths, _reader, _reader_options, _with_engine, audit
from gateway.evidence import pack_inputs
from gateway.policy.bundle import BundleError

__all__ = ["evidence_cmd"]


@audit.command("evidence")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="An empty (or new) directory for the pack.",
)
@_filter_options("since", "until")
@_reader_options("asks for it")
@click.pass_context
def evidence_cmd(
    ctx: click.Context,
    out: Path,
    flt: ExportFilter,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
) -> None:
    """Write an evidence pack for the period and filter: the trail (signed), the usage,
    transfers and denials reports, the trail's verification, the policy bundle and the
    configuration in force, and a signed manifest of it all."""
    settings = settings_from(ctx)
    url, key_file, cp_dir = _paths(settings)
    scope = _reader(actor, roles, scope_j)
    signer = Signer.from_file(key_file)
    try:
        inputs = pack_inputs(settings)
    except BundleError as exc:
        raise click.ClickException(f"the policy bundle cannot be read: {exc}") from None

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        return await write_pack(
            engine,
            signer,
            out,
            flt,
            scope,
            **inputs.pack_args(whole=scope.jurisdictions is None),
            allowed_roles=settings.audit.export_roles,
            checkpoint_dir=cp_dir,
            writer=writer_id(),
        )

    try:
        manifest = _with_engine(url, work)
    except AuditForbidden as exc:
        raise click.ClickException(str(exc)) from None
    except FileExistsError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from None
    click.echo(
        json.dumps(
            {
                "out": str(out),
                "files": len(manifest["files"]),
                "trail_verified": manifest["trail_verified"],
                "key_id": manifest["key_id"],
            }
        )
    )
