"""Offline verification of an exported file against its signed manifest (no database needed).

Checks the manifest's signature and its checkpoint's signature, the file's size and SHA-256, the
row count, that ``seq`` increases and stays within the checkpoint, and, for JSONL, Syslog and
OTLP exports, that every event hashes to its leaf. An unfiltered, unscoped export holds the
whole log up to the checkpoint, so its Merkle root is recomputed and compared with the signed
root.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import canonical_bytes, canonical_json
from audit.checkpoint import Checkpoint, CheckpointError
from audit.formats import parse_csv, parse_jsonl, parse_otlp, parse_syslog
from audit.merkle import leaf_hash, root_of
from audit.verify import Report

__all__ = ["verify_export"]


def _rows(fmt: str, data: bytes) -> list[dict[str, Any]]:
    if fmt == "jsonl":
        return list(parse_jsonl(data))
    if fmt == "syslog":
        return list(parse_syslog(data))
    if fmt == "otlp":
        return list(parse_otlp(data))
    table = parse_csv(data.decode("utf-8"))
    header, body = table[0], table[1:]
    return [
        {"seq": int(r[0]), "kind": r[1], "leaf_hash": r[header.index("leaf_hash")], "event": None}
        for r in body
    ]


def verify_export(path: Path, manifest_path: Path, public: Ed25519PublicKey) -> Report:
    import base64

    report = Report()
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    signature = manifest.pop("signature", "")
    try:
        public.verify(base64.b64decode(signature), canonical_json(manifest).encode("utf-8"))
    except (InvalidSignature, ValueError):
        report.problems.append("manifest signature does not verify")
    cp: Checkpoint | None = None
    if manifest.get("checkpoint"):
        try:
            cp = Checkpoint.from_json(manifest["checkpoint"])
            cp.verify(public)
            report.checkpoints = 1
            report.last_checkpoint = cp.tree_size
        except CheckpointError as exc:
            report.problems.append(f"manifest checkpoint: {exc}")
    data = path.read_bytes()
    if len(data) != manifest.get("bytes") or hashlib.sha256(data).hexdigest() != manifest.get(
        "sha256"
    ):
        report.problems.append("file differs from the manifest (size or SHA-256)")
    try:
        rows = _rows(str(manifest.get("format")), data)
    except (ValueError, IndexError, KeyError) as exc:
        report.problems.append(
            f"file does not parse as {manifest.get('format')}: {type(exc).__name__}"
        )
        return report
    report.entries = len(rows)
    if len(rows) != manifest.get("count"):
        report.problems.append(
            f"manifest says {manifest.get('count')} rows, the file has {len(rows)}"
        )
    last = 0
    limit = int(manifest.get("until_seq") or 0)
    leaves: list[bytes] = []
    for r in rows:
        seq = int(r["seq"])
        if seq <= last or seq > limit:
            report.problems.append(f"row seq {seq} out of order or beyond the checkpoint")
        last = seq
        leaf = bytes.fromhex(r["leaf_hash"])
        ev = r.get("event")
        if ev is None:
            report.purged += 1 if manifest.get("format") != "csv" else 0
        elif leaf_hash(canonical_bytes(ev)) != leaf:
            report.problems.append(f"row seq {seq} does not match its leaf hash: edited")
        leaves.append(leaf)
    full = (
        all(not v for v in manifest.get("filter", {}).values())
        and manifest.get("scope", {}).get("jurisdictions") is None
    )
    if full and cp is not None and not report.problems:
        if len(leaves) != cp.tree_size or [int(r["seq"]) for r in rows] != list(
            range(1, cp.tree_size + 1)
        ):
            report.problems.append("a full export must hold every entry up to the checkpoint")
        elif root_of(leaves).hex() != cp.root_hash:
            report.problems.append("root of the exported entries differs from the checkpoint")
        else:
            report.proofs += 1
    return report
