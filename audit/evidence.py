"""An evidence pack: what a regulator or an auditor asks for about a period, in one directory,
signed, checkable offline.

:func:`write_pack` writes into an empty directory:

- ``trail.jsonl`` and its signed manifest: the entries of the period and filter
  (:func:`audit.export.export`, JSONL; every entry with its leaf hash);
- ``usage.json``, ``transfers.json``, ``denials.json``: the three reports over the same filter
  (:mod:`audit.usage`, :mod:`audit.transfers`, :mod:`audit.denials`);
- ``verification.json``: the whole trail checked against its signed checkpoints now
  (:func:`audit.verify.verify_database`);
- ``policy.json`` and ``configuration.json``: the policy bundle revisions and the configuration
  hashes the period's decisions were made under (each with its requests, first and last, and the
  file the bundle or the configuration's document was kept in, where it was), and what the
  caller says is in force now (``current``: the bundle revision, the configuration hash, the
  backend catalogue's facts); the caller may add files (the policy bundle itself);
- ``public_key.pem``: the key the manifests and checkpoints are signed with (compare its
  ``key_id`` with one obtained apart from the pack);
- ``MANIFEST.json``: every file's size and SHA-256, the filter, the reader's scope and when,
  signed with the same key (Ed25519 over its canonical JSON); and ``README.txt``.

:func:`verify_pack` checks the manifest's signature, every file's size and digest, and the trail
against its own manifest. Every read is recorded in the trail, as each export and report is.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.canonical import canonical_json
from audit.checkpoint import Signer, key_id_of, verify_signature
from audit.export import ExportFilter, Scope, export, file_sha256, scoped_query
from audit.json_sql import entries, text_at
from audit.offline import verify_export
from audit.reports import DEFAULT_BY, run_report
from audit.store import now_ts
from audit.verify import verify_database

__all__ = ["MANIFEST", "PackReport", "verify_pack", "write_pack"]

MANIFEST = "MANIFEST.json"
_CONFIG_FILE = re.compile(r"config-([0-9a-f]{16})\.json")
TRAIL = "trail.jsonl"
_USAGE_BY = ("jurisdiction", "team", "model", "decision")
_DENIALS_BY = ("rule", "jurisdiction")
_TRANSFERS_BY = (*DEFAULT_BY["transfers"], "cross_border")
_README = """Portcullis evidence pack

What is here (MANIFEST.json lists every file with its size and SHA-256, and is signed):
  trail.jsonl                 the audit entries of the period and filter, one JSON object per
                              line, each with its leaf hash; trail.jsonl.manifest.json signs it
  usage.json                  requests, denials, failures and tokens per jurisdiction, team,
                              model and decision
  transfers.json              where the requests that were sent went (operator, hosting country,
                              self-hosted, cross-border) and the personal data in them, by type
                              and by what was done to it
  denials.json                per rule that refused requests: how many, how many people, first
                              and last, the government actions cited
  verification.json           the whole trail checked against its signed checkpoints when the
                              pack was made
  policy.json                 the policy bundle revisions the decisions were made under, and
                              the file of each the gateway kept (policy-bundle-<revision>.tar.gz)
  configuration.json          the configuration hashes the decisions were made under, and the
                              backend catalogue in force
  config-<hash>.json          the configuration of each hash the gateway kept, and the one in
                              force: its settings as canonical JSON, passwords and webhook paths
                              taken out; its SHA-256 begins with <hash>
  public_key.pem              the Ed25519 key that signed the manifests and the checkpoints

To check it (this folder, or the ZIP it came in), with the key obtained apart from this pack
(its key_id is in MANIFEST.json):
  portcullis audit verify --evidence DIR-OR-ZIP --public-key KEY.pem
Without Portcullis: each file's SHA-256 against MANIFEST.json, and MANIFEST.json's signature
(Ed25519, base64) over its canonical JSON without the "signature" field (keys sorted, no
spaces, UTF-8).
"""


def _write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n", "utf-8")


async def _seen(engine: AsyncEngine, flt: ExportFilter, scope: Scope, field: str) -> list[Any]:
    """The values of the outcome entries' ``field`` in the filter and scope, each with its
    requests, first and last, oldest first."""
    dialect = engine.dialect.name
    outcomes = ExportFilter(**{**flt.to_json(), "kinds": ("complete", "incomplete")})
    e = entries(dialect, scoped_query(outcomes, scope)).c
    value = text_at(dialect, e.doc, field).label("value")
    q = (
        sa.select(value, sa.func.count(), sa.func.min(e.ts), sa.func.max(e.ts))
        .where(e.doc.is_not(None))
        .group_by(value)
        .order_by(sa.func.min(e.ts))
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [{field: v, "requests": int(n), "first": a, "last": b} for v, n, a, b in rows]


@dataclass
class PackReport:
    ok: bool
    files: int
    key_id: str
    problems: list[str] = field(default_factory=list)
    trail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "key_id": self.key_id,
            "problems": self.problems,
            "trail": self.trail,
        }


async def write_pack(
    engine: AsyncEngine,
    signer: Signer,
    out: Path,
    flt: ExportFilter,
    scope: Scope,
    *,
    current: Mapping[str, Any],
    citations: Mapping[str, Mapping[str, Any]] | None = None,
    extra: Mapping[str, Callable[[Path], None]] | None = None,
    verify: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
    archived: Callable[[str], Path | None] | None = None,
    archived_config: Callable[[str], Path | None] | None = None,
    allowed_roles: tuple[str, ...] | frozenset[str] = ("admin", "auditor"),
    checkpoint_dir: Path | None = None,
    writer: str = "evidence:0:0",
) -> dict[str, Any]:
    """Write the pack into ``out`` (made if absent; refused unless empty) and return its signed
    manifest. ``current``: what is in force now (``bundle_revision``, ``config_hash``,
    ``catalogue``); ``extra``: more files, each written by its function into the path given;
    ``verify``: the trail's verification (default: :func:`audit.verify.verify_database` here; a
    server passes one that runs in a child process, so its event loop is not held); ``archived``:
    the file a bundle revision was kept in, if it was (each revision the period was decided
    under is copied in as ``policy-bundle-<revision>.tar.gz``); ``archived_config``: the file a
    configuration hash's document was kept in, if it was (copied in under its own name). Files
    are hashed in a worker thread."""
    scope.authorise(allowed_roles)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(
            f"{out} is not empty: an evidence pack goes into a directory of its own"
        )
    started = now_ts()
    who: dict[str, Any] = {"allowed_roles": allowed_roles, "writer": writer}
    await export(
        engine, signer, out / TRAIL, "jsonl", flt, scope, checkpoint_dir=checkpoint_dir, **who
    )

    for name, by in (("usage", _USAGE_BY), ("transfers", _TRANSFERS_BY), ("denials", _DENIALS_BY)):
        rows, totals = await run_report(name, engine, flt, scope, by, citations=citations, **who)
        _write(out / f"{name}.json", {"by": list(by), "groups": [r.to_json() for r in rows],
                                      "totals": totals})  # fmt: skip
    if verify is None:
        verified: Mapping[str, Any] = (
            await verify_database(engine, signer.public, checkpoint_dir)
        ).to_json()
    else:
        verified = await verify()
    _write(out / "verification.json", verified)
    seen = await _seen(engine, flt, scope, "bundle_revision")
    for s in seen:  # the bundle that decided, where the gateway kept it
        kept = archived(s["bundle_revision"]) if archived and s["bundle_revision"] else None
        s["bundle_file"] = None
        if kept is not None:
            s["bundle_file"] = f"policy-bundle-{kept.name}"
            await asyncio.to_thread(shutil.copyfile, kept, out / s["bundle_file"])
    _write(out / "policy.json", {"seen": seen, "current": current.get("bundle_revision")})
    configs = await _seen(engine, flt, scope, "config_hash")
    for c in configs:  # the configuration that decided, where the gateway kept its document
        kept = archived_config(c["config_hash"]) if archived_config and c["config_hash"] else None
        c["config_file"] = None
        if kept is not None:
            c["config_file"] = kept.name
            await asyncio.to_thread(shutil.copyfile, kept, out / kept.name)
    _write(out / "configuration.json", {
        "seen": configs,
        "current": {k: current.get(k) for k in ("config_hash", "config_file", "catalogue")},
    })  # fmt: skip
    (out / "public_key.pem").write_bytes(signer.public_pem())
    (out / "README.txt").write_text(_README, "utf-8")
    for name, write in (extra or {}).items():
        write(out / name)
    files = {
        p.name: {"bytes": p.stat().st_size, "sha256": await asyncio.to_thread(file_sha256, p)}
        for p in sorted(out.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest: dict[str, Any] = {
        "version": 1,
        "kind": "portcullis-evidence",
        "filter": flt.to_json(),
        "scope": scope.to_json(),
        "started": started,
        "finished": now_ts(),
        "files": files,
        "trail_verified": bool(verified.get("ok")),
        "key_id": signer.key_id,
    }
    manifest["signature"] = signer.sign_bytes(canonical_json(manifest).encode("utf-8"))
    _write(out / MANIFEST, manifest)
    return manifest


def _unzip(archive: Path, dest: Path) -> Path:
    """A pack's ZIP (one folder of plain files, as the admin API sends it) unpacked into
    ``dest``; ValueError for any other shape (no path leaves ``dest``)."""
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1:
            raise ValueError("it holds more than one folder")
        (top,) = tops
        if not top or top in (".", ".."):
            raise ValueError("its folder has no name")
        folder = dest / top
        folder.mkdir()
        for n in names:
            leaf = n.split("/", 1)[1] if "/" in n else ""
            if not leaf or "/" in leaf or "\\" in leaf or leaf in (".", ".."):
                raise ValueError(f"{n!r} is not a file of the pack's folder")
            (folder / leaf).write_bytes(z.read(n))
    return folder


def verify_pack(pack: Path, public: Any) -> PackReport:
    """Check a pack offline — its folder, or the ZIP the admin API sends: the manifest's
    signature under ``public``, each file's size and digest (and no file added or missing), the
    trail against its own signed manifest."""
    if pack.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                folder = _unzip(pack, Path(tmp))
            except (zipfile.BadZipFile, ValueError) as exc:
                return PackReport(False, 0, key_id_of(public), [f"{pack.name}: {exc}"])
            return _verify_folder(folder, public)
    return _verify_folder(pack, public)


def _verify_folder(pack: Path, public: Any) -> PackReport:
    problems: list[str] = []
    try:
        manifest = json.loads((pack / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return PackReport(False, 0, key_id_of(public), [f"{MANIFEST} is missing or not JSON"])
    signature = manifest.pop("signature", "")
    if not verify_signature(public, canonical_json(manifest).encode("utf-8"), signature):
        problems.append(f"{MANIFEST}: the signature does not verify under this key")
    listed = manifest.get("files") or {}
    present = {p.name for p in pack.iterdir() if p.is_file() and p.name != MANIFEST}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: not in the manifest")
    for name, want in sorted(listed.items()):
        path = pack / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != want.get("bytes") or file_sha256(path) != want.get("sha256"):
            problems.append(f"{name}: changed since the pack was signed")
    for path in sorted(pack.glob("config-*.json")):  # each document is the one its name says
        digest = _CONFIG_FILE.fullmatch(path.name)
        if digest and file_sha256(path)[:16] != digest.group(1):
            problems.append(f"{path.name}: its SHA-256 does not begin with its hash")
    trail_files = (pack / TRAIL, pack / (TRAIL + ".manifest.json"))
    if not all(p.is_file() for p in trail_files):
        problems.append(f"{TRAIL}: the trail or its manifest is missing")
        return PackReport(False, len(listed), key_id_of(public), problems)
    trail = verify_export(*trail_files, public)
    problems += [f"{TRAIL}: {p}" for p in trail.problems]
    return PackReport(not problems, len(listed), key_id_of(public), problems, trail.to_json())
