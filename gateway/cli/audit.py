"""``portcullis audit verify|export|ship|usage|transfers|content|checkpoint|purge|shred``:
the audit trail from the shell.

The command line is an operator's tool with database access, so it acts as ``admin`` unless
``--role``/``--scope-jurisdiction`` narrow it (an auditor's export is then only their rows).
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer, load_checkpoint_files, load_public_key, take_checkpoint
from audit.db import open_engine
from audit.export import AuditForbidden, ExportFilter, Scope, export, utc_text
from audit.formats import FORMATS
from audit.offline import verify_export
from audit.retention import purge
from audit.store import writer_id
from audit.vault import ContentVault
from audit.verify import Report, verify_database
from gateway.cli._common import settings_from
from gateway.config import Settings

__all__ = ["audit"]

T = TypeVar("T")


def _paths(settings: Settings) -> tuple[str, Path, Path]:
    a = settings.audit
    base = Path(settings.data_dir) / "audit"
    return (
        a.database_url or settings.database_url(),
        Path(a.signing_key_file or base / "signing.key"),
        Path(a.checkpoint_dir or base / "checkpoints"),
    )


def _with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = open_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        state = "OK" if report.ok else "FAILED"
        click.echo(
            f"{state}: {report.entries} entries, {report.checkpoints} checkpoints "
            f"(last {report.last_checkpoint}, {report.unanchored} after it), "
            f"{report.purged} purged, {report.proofs} proofs checked"
        )
        for p in report.problems:
            click.echo(f"  - {p}")
    if not report.ok:
        sys.exit(1)


def _utc(value: str | None) -> str | None:
    """A date or date-time as RFC 3339 UTC text, for comparison with stored ``ts``."""
    if value is None:
        return None
    try:
        return utc_text(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 date or time: {value!r}") from None


@click.group()
def audit() -> None:
    """The audit trail: verify, export, report (usage, transfers, denials), evidence packs,
    checkpoint, purge, ship."""


def _actor(value: str | None) -> str | None:
    """The actor is evidence in the log entry, which keeps identifiers only: refuse the rest
    here rather than record an action with no actor."""
    from audit.shapes import IDENTIFIER_CHARS, is_name

    if value is not None and not is_name(value):
        raise click.BadParameter(f"an identifier: {IDENTIFIER_CHARS}")
    return value


def _reader_options(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--actor``, ``--role`` and ``--scope-jurisdiction``: who reads the trail, and what of it
    (an export, a usage report)."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            [
                click.option(
                    "--actor",
                    default=None,
                    callback=lambda _c, _p, v: _actor(v),
                    help=f"Who {verb}, an identifier such as jane.doe (default: cli:<login>).",
                ),
                click.option(
                    "--role", "roles", multiple=True, help="Acting roles (default: admin)."
                ),
                click.option(
                    "--scope-jurisdiction",
                    "scope_j",
                    multiple=True,
                    help="Restrict to these jurisdictions (an auditor's scope).",
                ),
            ]
        ):
            f = option(f)
        return f

    return wrap


_FILTER_OPTIONS = {  # ExportFilter's field: its option, in the order --help lists them
    "since": click.option("--since", default=None, help="Inclusive, ISO 8601 (UTC if no offset)."),
    "until": click.option("--until", default=None, help="Exclusive, ISO 8601."),
    "jurisdiction": click.option("--jurisdiction", default=None),
    "user": click.option("--user", default=None),
    "team": click.option("--team", default=None),
    "decision": click.option("--decision", type=click.Choice(["allow", "deny"]), default=None),
    "rule": click.option("--rule", default=None),
    "backend": click.option("--backend", default=None),
    "request_id": click.option(
        "--request-id", default=None, help="One request's entries (its x-request-id)."
    ),
    "error_code": click.option(
        "--error-code",
        default=None,
        help="Outcomes refused or failed with this code (address_not_allowed, pii_blocked, ...).",
    ),
    "kinds": click.option("--kind", "kinds", multiple=True),
}
_COMMON_FILTERS = ("jurisdiction", "user", "team", "decision", "backend", "error_code")


def _filter_options(*extra: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The trail filter's options — ``--jurisdiction``, ``--user``, ``--team``, ``--decision``,
    ``--backend`` and the ``extra`` fields named (``since``, ``until``, ``rule``, ``request_id``,
    ``kinds``) — handed to the command as one ``flt: ExportFilter``."""
    chosen = [n for n in _FILTER_OPTIONS if n in _COMMON_FILTERS or n in extra]

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in chosen}
            for n in ("since", "until"):
                if n in values:
                    values[n] = _utc(values[n])
            if "kinds" in values:
                values["kinds"] = tuple(values["kinds"])
            try:
                flt = ExportFilter(**values)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None
            return f(*args, flt=flt, **kwargs)

        for n in reversed(chosen):
            command = _FILTER_OPTIONS[n](command)
        return command

    return wrap


def _reader(actor: str | None, roles: tuple[str, ...], scope_j: tuple[str, ...]) -> Scope:
    return Scope(
        actor=actor or f"cli:{getpass.getuser()}",
        roles=frozenset(roles or ("admin",)),
        jurisdictions=frozenset(scope_j) if scope_j else None,
    )


@audit.command("verify")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an exported file (with its manifest) instead of the database.",
)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--evidence",
    type=click.Path(exists=True, path_type=Path),
    help="Verify an evidence pack (its folder, or the ZIP the admin API sends) instead of the "
    "database.",
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Ed25519 public key PEM (default: the configured signing key).",
)
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of checkpoint files (default: the configured one).",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    file_: Path | None,
    manifest: Path | None,
    evidence: Path | None,
    public_key: Path | None,
    checkpoints: Path | None,
    as_json: bool,
) -> None:
    """Check the log (or an export) against its signed checkpoints; exit 1 on any problem."""
    settings = settings_from(ctx)
    url, key_file, cp_dir = _paths(settings)
    try:
        public = load_public_key(public_key or key_file)
    except FileNotFoundError:
        raise click.ClickException(
            f"no audit signing key at {public_key or key_file}: the gateway makes it on its first "
            "start (or pass --public-key with the key that signed the checkpoints)"
        ) from None
    if evidence is not None:
        from audit.evidence import verify_pack

        pack = verify_pack(evidence, public)
        if as_json:
            click.echo(json.dumps(pack.to_json(), indent=1))
        else:
            state = "OK" if pack.ok else "FAILED"
            click.echo(f"{state}: {pack.files} files, signed by key {pack.key_id}")
            for p in pack.problems:
                click.echo(f"  - {p}")
        if not pack.ok:
            sys.exit(1)
        return
    if file_ is not None:
        m = manifest or file_.with_name(file_.name + ".manifest.json")
        if not m.exists():
            raise click.ClickException("the export's manifest is missing")
        _print_report(verify_export(file_, m, public), as_json)
        return
    report = _with_engine(url, lambda e: verify_database(e, public, checkpoints or cp_dir))
    _print_report(report, as_json)


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@_filter_options("since", "until", "rule", "request_id", "kinds")
@_reader_options("exports")
@click.option("--page", default=2000, show_default=True)
@click.pass_context
def export_cmd(
    ctx: click.Context,
    fmt: str,
    out: Path,
    flt: ExportFilter,
    actor: str | None,
    roles: tuple[str, ...],
    scope_j: tuple[str, ...],
    page: int,
) -> None:
    """Stream matching entries to a file with a signed manifest; rerun to resume after a kill."""
    settings = settings_from(ctx)
    url, key_file, cp_dir = _paths(settings)
    scope = _reader(actor, roles, scope_j)
    signer = Signer.from_file(key_file)

    async def work(engine: AsyncEngine) -> Any:
        return await export(
            engine,
            signer,
            out,
            fmt,
            flt,
            scope,
            allowed_roles=settings.audit.export_roles,
            checkpoint_dir=cp_dir,
            writer=writer_id(),
            page=page,
        )

    try:
        result = _with_engine(url, work)
    except AuditForbidden as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        json.dumps(
            {
                "file": str(result.path),
                "manifest": str(result.manifest),
                "count": result.count,
                "until_seq": result.until_seq,
                "resumed": result.resumed,
            }
        )
    )


@audit.command("checkpoint")
@click.pass_context
def checkpoint_cmd(ctx: click.Context) -> None:
    """Sign the current head now (stored in the database and as a file)."""
    settings = settings_from(ctx)
    url, key_file, cp_dir = _paths(settings)
    signer = Signer.from_file(key_file)
    cp = _with_engine(url, lambda e: take_checkpoint(e, signer, cp_dir))
    click.echo(json.dumps(cp.to_json() if cp else None))


@audit.command("checkpoints")
@click.pass_context
def checkpoints_cmd(ctx: click.Context) -> None:
    """List the checkpoint files."""
    _, _, cp_dir = _paths(settings_from(ctx))
    for cp in load_checkpoint_files(cp_dir):
        click.echo(json.dumps(cp.to_json()))


@audit.command("purge")
@click.option("--now", "now_", default=None, help="Pretend it is this time (ISO 8601).")
@click.pass_context
def purge_cmd(ctx: click.Context, now_: str | None) -> None:
    """Drop event bodies past their retention class; leaf hashes stay, the log still verifies."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    a = settings.audit
    at = datetime.fromisoformat(_utc(now_).replace("Z", "+00:00")) if now_ else None  # type: ignore[union-attr]
    counts = _with_engine(
        url,
        lambda e: purge(
            e, a.retention_days, a.default_retention_class, a.tenant_retention, writer_id(), at
        ),
    )
    click.echo(json.dumps(counts))


@audit.command("shred")
@click.option("--tenant", required=True)
@click.option(
    "--actor",
    default=None,
    callback=lambda _c, _p, v: _actor(v),
    help="Who shreds, an identifier such as jane.doe (default: cli:<login>).",
)
@click.pass_context
def shred_cmd(ctx: click.Context, tenant: str, actor: str | None) -> None:
    """Destroy a tenant's content key: its captured content becomes unreadable for good."""
    settings = settings_from(ctx)
    url, _, _ = _paths(settings)
    scope = Scope(actor=actor or f"cli:{getpass.getuser()}", roles=frozenset({"admin"}))
    done = _with_engine(url, lambda e: ContentVault(e, writer_id()).shred(tenant, scope))
    click.echo(json.dumps({"tenant": tenant, "key_destroyed": done}))


# ``audit ship``, ``audit content``, ``audit usage``, ``audit transfers``, ``audit denials``,
# ``audit evidence`` and ``audit subject`` live in their own modules and register themselves on
# the group above.
from gateway.cli import audit_content as _audit_content  # noqa: E402, F401
from gateway.cli import audit_evidence as _audit_evidence  # noqa: E402, F401
from gateway.cli import audit_reports as _audit_reports  # noqa: E402, F401
from gateway.cli import audit_ship as _audit_ship  # noqa: E402, F401
from gateway.cli import audit_subject as _audit_subject  # noqa: E402, F401
