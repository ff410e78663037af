"""Signed checkpoints (Ed25519): ``(tree size, root hash, time)`` signed, kept in the database
and written as files outside it, so a truncated or rewritten log no longer matches them.

The signed text is a small note, one field a line::

    portcullis-audit-checkpoint/v1
    <tree size>
    <root hash, hex>
    <timestamp, RFC 3339 UTC>
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.schema import audit_checkpoints
from audit.store import now_ts, read_head

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "load_checkpoint_files",
    "load_public_key",
    "take_checkpoint",
]

ORIGIN = "portcullis-audit-checkpoint/v1"


class CheckpointError(ValueError):
    """A checkpoint is malformed or its signature does not verify."""


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def key_id_of(public: Ed25519PublicKey) -> str:
    """A public key's id as manifests and checkpoints name it (16 hex digits of its SHA-256)."""
    return _key_id(public)


def verify_signature(public: Ed25519PublicKey, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64, as :meth:`Signer.sign_bytes` makes it) signs ``data``."""
    try:
        public.verify(base64.b64decode(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Checkpoint:
    tree_size: int
    root_hash: str  # hex
    ts: str
    key_id: str
    signature: str  # base64

    def note(self) -> bytes:
        return f"{ORIGIN}\n{self.tree_size}\n{self.root_hash}\n{self.ts}\n".encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": ORIGIN,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "ts": self.ts,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        try:
            if data["origin"] != ORIGIN:
                raise CheckpointError("not a portcullis checkpoint")
            return cls(
                tree_size=int(data["tree_size"]),
                root_hash=str(data["root_hash"]),
                ts=str(data["ts"]),
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError("malformed checkpoint") from exc

    def verify(self, public: Ed25519PublicKey) -> None:
        if self.key_id != _key_id(public):
            raise CheckpointError("checkpoint signed by another key")
        try:
            public.verify(base64.b64decode(self.signature), self.note())
        except (InvalidSignature, ValueError) as exc:
            raise CheckpointError("checkpoint signature does not verify") from exc


class Signer:
    """The log's Ed25519 key, read from a PEM file (created 0600 on first use when allowed)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = _key_id(self.public)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_file(cls, path: Path, create: bool = True) -> Signer:
        if not path.exists():
            if not create:
                raise FileNotFoundError("audit signing key file is missing")
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            pub = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            path.with_suffix(".pub").write_bytes(pub)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise CheckpointError("audit signing key is not an Ed25519 key")
        return cls(loaded)

    def sign(self, tree_size: int, root: bytes, ts: str | None = None) -> Checkpoint:
        cp = Checkpoint(tree_size, root.hex(), ts or now_ts(), self.key_id, "")
        sig = base64.b64encode(self._private.sign(cp.note())).decode()
        return Checkpoint(cp.tree_size, cp.root_hash, cp.ts, cp.key_id, sig)

    def sign_bytes(self, data: bytes) -> str:
        return base64.b64encode(self._private.sign(data)).decode()

    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a ``.pub`` PEM, or the public half of a private key PEM."""
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        priv = serialization.load_pem_private_key(data, password=None)
        if not isinstance(priv, Ed25519PrivateKey):
            raise CheckpointError("not an Ed25519 key")
        return priv.public_key()
    pub = serialization.load_pem_public_key(data)
    if not isinstance(pub, Ed25519PublicKey):
        raise CheckpointError("not an Ed25519 key")
    return pub


def _write_file(directory: Path, cp: Checkpoint) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"checkpoint-{cp.tree_size:015d}.json"
    tmp = target.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(cp.to_json(), fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


async def take_checkpoint(
    engine: AsyncEngine, signer: Signer, directory: Path | None
) -> Checkpoint | None:
    """Sign the current head; store it in the database and as a file. ``None`` on an empty log."""
    async with engine.connect() as conn:
        head = await read_head(conn)
    if head.size == 0:
        return None
    cp = signer.sign(head.size, head.frontier.root())
    if directory is not None:
        _write_file(directory, cp)
    try:
        await _store(engine, cp)
    except sa.exc.IntegrityError:
        pass  # another replica stored the same tree size at the same moment
    return cp


async def _store(engine: AsyncEngine, cp: Checkpoint) -> None:
    async with engine.begin() as conn:
        exists = (
            await conn.execute(
                sa.select(audit_checkpoints.c.tree_size).where(
                    audit_checkpoints.c.tree_size == cp.tree_size
                )
            )
        ).first()
        if exists is None:
            await conn.execute(
                sa.insert(audit_checkpoints).values(
                    tree_size=cp.tree_size,
                    root_hash=cp.root_hash,
                    ts=cp.ts,
                    key_id=cp.key_id,
                    signature=cp.signature,
                )
            )


def load_checkpoint_files(directory: Path) -> list[Checkpoint]:
    if not directory.is_dir():
        return []
    out = []
    for p in sorted(directory.glob("checkpoint-*.json")):
        out.append(Checkpoint.from_json(json.loads(p.read_text(encoding="utf-8"))))
    return out
