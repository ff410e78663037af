"""An evidence pack's configuration documents are checked against their names: a document whose
SHA-256 does not begin with the hash its name gives is found, even in a pack signed whole (a
pack built from a wrong file would otherwise pass)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audit.canonical import canonical_json
from audit.checkpoint import Signer
from audit.evidence import MANIFEST, verify_pack
from audit.export import file_sha256


def _signed_pack(folder: Path, signer: Signer, files: dict[str, bytes]) -> None:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "files": {
            n: {"bytes": len(d), "sha256": file_sha256(folder / n)} for n, d in files.items()
        },
        "key_id": signer.key_id,
    }
    manifest["signature"] = signer.sign_bytes(canonical_json(manifest).encode("utf-8"))
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_document_is_held_to_the_hash_its_name_gives(tmp_path: Path) -> None:
    signer = Signer.from_file(tmp_path / "signing.key")
    right = b'{"backends":[]}'
    digest = hashlib.sha256(right).hexdigest()[:16]
    _signed_pack(
        tmp_path / "pack",
        signer,
        {f"config-{digest}.json": right, "config-0123456789abcdef.json": b'{"other":1}'},
    )
    problems = verify_pack(tmp_path / "pack", signer.public).problems
    assert "config-0123456789abcdef.json: its SHA-256 does not begin with its hash" in problems
    assert not any(p.startswith(f"config-{digest}") for p in problems)
    assert not any("changed since" in p or "signature" in p for p in problems)  # signed whole
    # a pack without its trail is said to be one, not a traceback
    assert "trail.jsonl: the trail or its manifest is missing" in problems
