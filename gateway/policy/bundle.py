"""Loading the policy bundle: the shipped pack in ``policies/`` plus the organisation's overlays.

Layout (the data document both engines see)::

    data.facts.<stem>            policies/data/<stem>.json        (actions, regions, pii)
    data.facts.by_place          index of actions by jurisdiction, built here
    data.overlays.<name>.<stem>  <overlay dir>/<stem>.json         (an overlay's own data)
    data.bundle.revision         content hash of every file above and every module
    data.portcullis.*            the Rego modules (packages portcullis, portcullis.lib,
                                 portcullis.jurisdiction.<cc>, portcullis.overlay.<name>)

``*_test.rego`` modules are kept apart (``Bundle.tests``): they never change a decision and are
loaded only by ``portcullis policy test``. The revision is a hash of the decision-relevant files,
so editing a test does not invalidate cached decisions.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Bundle",
    "BundleError",
    "archive_bundle",
    "archived_name",
    "citations_for",
    "cited_actions",
    "default_bundle_dir",
    "index_actions",
    "load_bundle",
    "write_opa_bundle",
]

log = logging.getLogger("portcullis")

_SKIP_DIRS = {"tools", "schema", "overlays"}
_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_OVERLAY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")


class BundleError(ValueError):
    """The bundle or an overlay cannot be loaded (missing, unreadable, wrong package)."""


@dataclass(frozen=True, slots=True)
class Bundle:
    modules: tuple[tuple[str, str], ...]  # (name, Rego text), decision-relevant
    tests: tuple[tuple[str, str], ...]  # (name, Rego text) of *_test.rego
    data: dict[str, Any] = field(hash=False)
    revision: str = ""
    root: Path | None = None
    overlays: tuple[Path, ...] = ()


def default_bundle_dir() -> Path:
    """The shipped pack: ``policies/`` at the repository root."""
    return Path(__file__).resolve().parents[2] / "policies"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read data file {path.name}: {type(exc).__name__}") from None


def _package_of(text: str, name: str) -> str:
    m = _PACKAGE.search(text)
    if not m:
        raise BundleError(f"{name}: no package declaration")
    return m.group(1)


_PARTS = ("hosted", "weights", "weights_cautious", "weights_permitted")


def _template(a: dict[str, Any], part: str) -> dict[str, Any]:
    """The static fields of a reason (``lib.template`` in the pack is the same definition)."""
    return {
        "rule": f"{a.get('package')}.{a.get('id')}.{part}",
        "message": (a.get("messages") or {}).get(part),
        "citation": {
            "authority": a.get("authority"),
            "instrument": a.get("instrument"),
            "date": a.get("effective_date"),
            "url": a.get("url"),
            "confidence": a.get("confidence"),
            "action_id": a.get("id"),
        },
    }


def _weights_parts(a: dict[str, Any]) -> dict[str, list[str]]:
    """stance -> [part, effect] of the weights reason (``lib.weights_outcome`` in the pack)."""
    if a.get("weights") == "covered":
        return {"cautious": ["weights", a["effect"]], "permit": ["weights", a["effect"]]}
    if a.get("weights") == "ambiguous" and a.get("effect") == "deny":
        return {"cautious": ["weights_cautious", "deny"], "permit": ["weights_permitted", "info"]}
    return {}


def index_actions(actions: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Actions by jurisdiction, each with the fields the pack filters on precomputed:
    ``start`` (effective_from, ``""`` when no date is established: in force), ``end``
    (lifted_on, ``"~"`` when not lifted; sorts after every date), ``sector_set`` and the reason
    ``templates`` per part (rule id, message, citation: see ``lib.template``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for a in actions:
        if not isinstance(a, dict) or not isinstance(a.get("jurisdiction"), str):
            raise BundleError("every action needs a jurisdiction")
        entry = {
            **a,
            "start": a.get("effective_from") or "",
            "end": a.get("lifted_on") or "~",
            "sector_set": {s: True for s in a.get("sectors", [])},
            "templates": {part: _template(a, part) for part in _PARTS},
            "weights_parts": _weights_parts(a),
        }
        out.setdefault(a["jurisdiction"], []).append(entry)
    return out


def load_bundle(bundle_dir: Path | None = None, overlays: Sequence[Path] = ()) -> Bundle:
    root = (bundle_dir or default_bundle_dir()).resolve()
    if not root.is_dir():
        raise BundleError(f"policy bundle directory not found: {root}")
    hasher = hashlib.sha256()
    modules: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    facts: dict[str, Any] = {}

    def add_file(label: str, raw: bytes) -> None:
        hasher.update(label.encode() + b"\0" + hashlib.sha256(raw).digest())

    for path in sorted(root.rglob("*.rego")):
        rel = path.relative_to(root)
        if rel.parts[0] in _SKIP_DIRS:
            continue
        text = path.read_text(encoding="utf-8")
        if not _package_of(text, str(rel)).startswith("portcullis"):
            raise BundleError(f"{rel}: packages of the pack live under 'portcullis'")
        if path.name.endswith("_test.rego"):
            tests.append((f"pack/{rel}", text))
        else:
            modules.append((f"pack/{rel}", text))
            add_file(f"pack/{rel}", text.encode())
    data_dir = root / "data"
    for path in sorted(data_dir.glob("*.json")) if data_dir.is_dir() else []:
        raw = path.read_bytes()
        facts[path.stem] = _read_json(path)
        add_file(f"pack/data/{path.name}", raw)
    actions = facts.get("actions")
    if not isinstance(actions, list):
        raise BundleError("policy bundle has no data/actions.json list")
    facts["by_place"] = index_actions(actions)  # derived; the hash covers actions.json
    overlay_data: dict[str, Any] = {}
    resolved: list[Path] = []
    for ov in overlays:
        ov = ov.resolve()
        if not ov.is_dir():
            raise BundleError(f"overlay directory not found: {ov}")
        name = ov.name.lower()
        if not _OVERLAY_NAME.match(name) or name in overlay_data:
            raise BundleError(f"overlay {ov.name!r}: name must be unique, [a-z0-9_-]")
        resolved.append(ov)
        overlay_data[name] = {}
        for path in sorted(ov.rglob("*.rego")):
            rel = path.relative_to(ov)
            text = path.read_text(encoding="utf-8")
            pkg = _package_of(text, f"{name}/{rel}")
            if path.name.endswith("_test.rego"):
                tests.append((f"overlay/{name}/{rel}", text))
                continue
            if not pkg.startswith("portcullis.overlay."):
                raise BundleError(
                    f"overlay {name}/{rel}: package must be portcullis.overlay.<name>"
                )
            modules.append((f"overlay/{name}/{rel}", text))
            add_file(f"overlay/{name}/{rel}", text.encode())
        for path in sorted(ov.glob("*.json")):
            raw = path.read_bytes()
            overlay_data[name][path.stem] = _read_json(path)
            add_file(f"overlay/{name}/{path.name}", raw)
    revision = "sha256:" + hasher.hexdigest()[:20]
    data = {"facts": facts, "overlays": overlay_data, "bundle": {"revision": revision}}
    return Bundle(
        modules=tuple(modules),
        tests=tuple(tests),
        data=data,
        revision=revision,
        root=root,
        overlays=tuple(resolved),
    )


def cited_actions(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """The pack's government actions by id: what a decision's ``citation_ids`` name (authority,
    instrument, effective date, status, source)."""
    actions = bundle.data["facts"].get("actions") or []
    return {a["id"]: a for a in actions if isinstance(a, dict) and isinstance(a.get("id"), str)}


def citations_for(bundle_dir: Path | None, overlays: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """:func:`cited_actions` of the configured bundle; none when it cannot be read now (a report
    then names its citations by id only)."""
    try:
        return cited_actions(load_bundle(bundle_dir, overlays))
    except BundleError:
        return {}


def archived_name(revision: str) -> str:
    """The file an archived bundle of ``revision`` is kept in: ``sha256-<hex>.tar.gz``."""
    return revision.replace(":", "-") + ".tar.gz"


def archive_bundle(bundle: Bundle, directory: Path) -> Path | None:
    """Keep ``bundle`` as an OPA bundle named by its revision in ``directory`` (once: a revision
    names its content), so that what decided a past request can be shown later (the evidence
    pack). None when it cannot be written (the gateway runs on; the pack then says so)."""
    target = directory / archived_name(bundle.revision)
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        write_opa_bundle(bundle, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("policy bundle %s not archived: %s", bundle.revision, type(exc).__name__)
        return None
    return target


def write_opa_bundle(bundle: Bundle, dest: Path) -> None:
    """Write an OPA bundle (``.tar.gz``) with the same modules and data document.

    Serve it to the sidecar (``opa run --server --bundle bundle.tar.gz``); ``.manifest`` carries
    the same revision, and the data document is the one the embedded engine evaluates.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:

        def put(name: str, payload: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(payload))

        manifest = {
            "revision": bundle.revision,
            "roots": ["portcullis", "facts", "overlays", "bundle"],
        }
        put("/.manifest", json.dumps(manifest).encode())
        put("/data.json", json.dumps(bundle.data, sort_keys=True).encode())
        for name, text in bundle.modules:
            put("/" + name, text.encode())
    dest.write_bytes(buf.getvalue())
