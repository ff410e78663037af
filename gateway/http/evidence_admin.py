"""``GET /admin/audit/evidence?since=&until=&jurisdiction=&user=&team=&decision=&backend=`` —
role ``auditor`` (or the admin token), scoped as the export is: the evidence pack of
:mod:`audit.evidence` for that period and filter, as one ZIP download (a folder
``portcullis-evidence-<time>/`` inside), the console's **Evidence pack** button. The pack is
built in a temporary folder under the data directory (the trail's verification in a child
process, the hashing and the zipping in worker threads, so the event loop is not held), sent,
then deleted; one at a time per process (409 meanwhile), and folders a dead process left are
swept after an hour. ``portcullis audit verify --evidence FILE.zip`` checks it offline."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from gateway.errors import Cause, GatewayError
from gateway.evidence import BUNDLE_REVISION, archived_bundle, pack_inputs
from gateway.http.audit_query import REPORT_FILTERS, audit_engine, may, query_filter, reader_scope
from gateway.policy.bundle import BundleError
from gateway.services import Services

__all__ = ["EVIDENCE_HANDLERS", "audit_bundle", "audit_configuration", "audit_evidence", "sweep"]


# One pack at a time per process (each reads the whole range several times over); another
# asked meanwhile gets a 409.
_BUILDING: set[str] = set()
_STALE_S = 3600.0  # a build folder older than this was left by a process that died mid-build


def sweep(base: Path, now: float | None = None) -> int:
    """Remove build folders under ``base`` older than an hour (a process that died while
    building left them; another replica sharing the data directory may be building a fresh
    one). How many were removed."""
    import time

    cutoff = (now if now is not None else time.time()) - _STALE_S
    gone = 0
    for folder in base.glob("evidence-*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                gone += 1
        except OSError:
            continue
    return gone


def _zip(folder: Path, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"{folder.name}/{path.name}")


def _authorised(request: Request[Any, Any, Any], services: Services) -> None:
    with may():
        reader_scope(request).authorise(services.settings.audit.export_roles)


async def _kept_file(
    kept: Path | None, media_type: str, missing: str, filename: str | None = None
) -> Response[bytes]:
    """A file the gateway kept (a configuration document, a policy bundle), or the 404 saying
    why there is none."""
    if kept is None:
        raise GatewayError(Cause.NOT_FOUND, missing)
    headers = {"x-content-type-options": "nosniff"}
    if filename:
        headers["content-disposition"] = f'attachment; filename="{filename}"'
    return Response(
        content=await asyncio.to_thread(kept.read_bytes), media_type=media_type, headers=headers
    )


@get("/admin/audit/configurations/{digest:str}", opt={"role": "auditor"})
async def audit_configuration(
    digest: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    """The configuration a request was decided under: the document kept by the hash its record
    carries (``config_hash``; :mod:`gateway.config_archive`), as JSON — passwords and webhook
    paths taken out, its SHA-256 beginning with the hash."""
    from gateway.config_archive import CONFIG_HASH, archived_config

    services: Services = state.services
    _authorised(request, services)
    if reader_scope(request).jurisdictions is not None:
        raise GatewayError(
            Cause.FORBIDDEN,
            "A configuration holds every jurisdiction's settings: readers scoped to some "
            "jurisdictions see its hash, not its document.",
        )
    if not CONFIG_HASH.fullmatch(digest):
        raise GatewayError(
            Cause.INVALID_PARAMETER, "A configuration hash is 16 hex digits.", param="digest"
        )
    return await _kept_file(
        archived_config(services.settings.data_dir, digest),
        "application/json",
        "No document of this configuration was kept (it ran before 2026-12-01, on another "
        "data directory, or could not be written).",
    )


@get("/admin/audit/bundles/{revision:str}", opt={"role": "auditor"})
async def audit_bundle(
    revision: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Response[bytes]:
    """The policy bundle a request was decided under, by the revision its record carries
    (``bundle_revision``), as the OPA bundle the gateway kept when it loaded it."""
    services: Services = state.services
    _authorised(request, services)
    if not BUNDLE_REVISION.fullmatch(revision):
        raise GatewayError(
            Cause.INVALID_PARAMETER, "A bundle revision is sha256:<hex>.", param="revision"
        )
    kept = archived_bundle(services.settings.data_dir, revision)
    return await _kept_file(
        kept,
        "application/gzip",
        "This bundle revision was not kept (it was loaded before 2026-12-01, under "
        "policy.engine: opa, or on another data directory).",
        f"policy-bundle-{kept.name}" if kept else None,
    )


@get("/admin/audit/evidence", opt={"role": "auditor"})
async def audit_evidence(request: Request[Any, Any, Any], state: State) -> Stream:
    from audit.evidence import write_pack
    from audit.verify import verify_in_subprocess

    services: Services = state.services
    unknown = set(request.query_params) - set(REPORT_FILTERS)
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    flt = query_filter(request, REPORT_FILTERS, ())
    _authorised(request, services)
    scope = reader_scope(request)
    roles = services.settings.audit.export_roles
    engine = audit_engine(services)
    signer = getattr(services.audit, "signer", None)
    if signer is None:
        raise GatewayError(Cause.CONFLICT, "This audit store has no signing key to sign a pack.")
    try:
        inputs = pack_inputs(services.settings, services.config_hash)
    except BundleError:
        raise GatewayError(
            Cause.CONFLICT, "The configured policy bundle cannot be read now; try again."
        ) from None
    checkpoints = getattr(services.audit, "checkpoint_dir", None)
    url = engine.url.render_as_string(hide_password=False)

    async def verify() -> Any:
        try:
            return await verify_in_subprocess(
                url, signer.public_pem(), str(checkpoints) if checkpoints else None
            )
        except RuntimeError:
            raise GatewayError(
                Cause.AUDIT_UNAVAILABLE, "The verification could not read the audit store."
            ) from None

    name = f"portcullis-evidence-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    base = Path(services.settings.data_dir) / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    if url in _BUILDING:
        raise GatewayError(Cause.CONFLICT, "An evidence pack is being built; try again shortly.")
    _BUILDING.add(url)
    await asyncio.to_thread(sweep, base)
    work = Path(tempfile.mkdtemp(prefix="evidence-", dir=base))
    try:
        await write_pack(
            engine,
            signer,
            work / name,
            flt,
            scope,
            **inputs.pack_args(whole=scope.jurisdictions is None),
            verify=verify,
            allowed_roles=roles,
            checkpoint_dir=checkpoints,
            writer=getattr(services.audit, "writer_id", "evidence:0:0"),
        )
        archive = work / f"{name}.zip"
        await asyncio.to_thread(_zip, work / name, archive)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        _BUILDING.discard(url)

    async def body() -> AsyncIterator[bytes]:
        try:
            with open(archive, "rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                    yield chunk
        finally:
            shutil.rmtree(work, ignore_errors=True)

    headers = {
        "content-disposition": f'attachment; filename="{name}.zip"',
        "x-content-type-options": "nosniff",
    }
    return Stream(body(), media_type="application/zip", headers=headers)


EVIDENCE_HANDLERS = [audit_evidence, audit_configuration, audit_bundle]
