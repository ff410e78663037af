"""Verification of the log in the database against its signed checkpoints.

Walks the log in ``seq`` order in constant memory apart from the leaf hashes (32 bytes each, kept
for proofs), recomputing every leaf from its canonical body and the Merkle root at every
checkpoint size. Detects: an edited body (leaf mismatch, or root mismatch when the leaf was
recomputed too), a deleted or inserted entry (sequence gap or root mismatch), reordering (root
mismatch), a truncated tail (log shorter than a checkpoint) and a rewritten head. Consistency
proofs between consecutive checkpoints and inclusion proofs of sampled entries are checked too.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Checkpoint, CheckpointError, load_checkpoint_files
from audit.merkle import (
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from audit.schema import audit_checkpoints, audit_log
from audit.store import Head, read_head

__all__ = ["Report", "verify_database", "verify_in_subprocess", "verify_leaves", "verify_url"]


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    last_checkpoint: int = 0
    purged: int = 0
    proofs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unanchored(self) -> int:
        """Entries after the last checkpoint: intact so far, but not yet covered by a signature."""
        return max(0, self.entries - self.last_checkpoint)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "last_checkpoint": self.last_checkpoint,
            "unanchored": self.unanchored,
            "purged": self.purged,
            "proofs_checked": self.proofs,
            "problems": self.problems,
        }


def _checkpoints(
    found: Iterable[Checkpoint], public: Ed25519PublicKey, report: Report
) -> dict[int, Checkpoint]:
    by_size: dict[int, Checkpoint] = {}
    for cp in found:
        try:
            cp.verify(public)
        except CheckpointError as exc:
            report.problems.append(f"checkpoint {cp.tree_size}: {exc}")
            continue
        seen = by_size.get(cp.tree_size)
        if seen is not None and seen.root_hash != cp.root_hash:
            report.problems.append(f"two signed checkpoints of size {cp.tree_size} disagree")
        by_size[cp.tree_size] = cp
    return by_size


def verify_leaves(
    leaves: list[bytes], by_size: dict[int, Checkpoint], report: Report, samples: int = 16
) -> bytes:
    """Roots at every checkpoint, consistency proofs, sampled inclusion proofs; returns the root.

    Consistency is proved from the first to the last good checkpoint and between the last few
    consecutive ones (the root comparison at every checkpoint already covers the others).
    """
    sizes = sorted(by_size)
    report.checkpoints = len(sizes)
    frontier = Frontier()
    roots: dict[int, bytes] = {}
    want = iter(sizes)
    nxt = next(want, None)
    while nxt is not None and nxt == 0:
        nxt = next(want, None)
    for leaf in leaves:
        frontier.append(leaf)
        if frontier.size == nxt:
            roots[nxt] = frontier.root()
            nxt = next(want, None)
    for size in sizes:
        cp = by_size[size]
        if size > len(leaves):
            report.problems.append(
                f"log has {len(leaves)} entries but checkpoint {size} was signed: tail truncated"
            )
        elif roots.get(size, b"").hex() != cp.root_hash:
            report.problems.append(f"root at checkpoint {size} differs: the log was altered")
    good = [
        s for s in sizes if s <= len(leaves) and roots.get(s, b"").hex() == by_size[s].root_hash
    ]
    report.last_checkpoint = max(sizes, default=0)
    pairs = set(zip(good[-5:], good[-4:], strict=False))
    if len(good) > 1:
        pairs.add((good[0], good[-1]))
    for a, b in sorted(pairs):
        try:
            proof = consistency_proof(leaves[:b], a)
            verify_consistency(
                a,
                b,
                bytes.fromhex(by_size[a].root_hash),
                bytes.fromhex(by_size[b].root_hash),
                proof,
            )
            report.proofs += 1
        except ProofError as exc:
            report.problems.append(f"consistency {a}->{b}: {exc}")
    if good:
        top = good[-1]
        rng = random.Random(top)
        picks = {top - 1, *(rng.randrange(top) for _ in range(min(samples, top)))}
        root = bytes.fromhex(by_size[top].root_hash)
        sub = leaves[:top]
        for i in sorted(picks):
            try:
                verify_inclusion(i, top, sub[i], inclusion_proof(sub, i), root)
                report.proofs += 1
            except ProofError as exc:
                report.problems.append(f"inclusion of seq {i + 1}: {exc}")
    return frontier.root()


async def verify_database(
    engine: AsyncEngine,
    public: Ed25519PublicKey,
    checkpoint_dir: Path | None = None,
    extra: Iterable[Checkpoint] = (),
    samples: int = 16,
) -> Report:
    report = Report()
    leaves: list[bytes] = []
    expected = 1
    async with engine.connect() as conn:
        stored = [
            Checkpoint(int(r.tree_size), r.root_hash, r.ts, r.key_id, r.signature)
            for r in (await conn.execute(sa.select(audit_checkpoints))).all()
        ]
        result = await conn.stream(
            sa.select(audit_log.c.seq, audit_log.c.body, audit_log.c.leaf_hash)
            .order_by(audit_log.c.seq)
            .execution_options(yield_per=5000)
        )
        async for part in result.partitions(5000):
            for seq, body, stored_leaf in part:
                if seq != expected:
                    report.problems.append(
                        f"sequence jumps from {expected - 1} to {seq}: entries deleted or inserted"
                    )
                    expected = seq
                expected += 1
                leaf = bytes(stored_leaf)
                if body is None:
                    report.purged += 1
                elif leaf_hash(body.encode("utf-8")) != leaf:
                    report.problems.append(f"entry {seq} does not match its leaf hash: edited")
                leaves.append(leaf)
        try:
            head: Head | None = await read_head(conn)
        except ValueError:
            head = None
    report.entries = len(leaves)
    files = load_checkpoint_files(checkpoint_dir) if checkpoint_dir else []
    by_size = _checkpoints([*stored, *files, *extra], public, report)
    root = verify_leaves(leaves, by_size, report, samples)
    if head is None:
        report.problems.append("the head's frontier does not match its size")
    elif head.size != len(leaves):
        report.problems.append(f"head says {head.size} entries, the log has {len(leaves)}")
    elif head.frontier.root() != root:
        report.problems.append("head root differs from the log's root")
    return report


def verify_url(url: str, public_pem: bytes, checkpoint_dir: str | None = None) -> dict[str, Any]:
    """:func:`verify_database` over a database URL, with its own engine and event loop, as JSON:
    for a worker process (``GET /admin/audit/verify`` runs it in one, so verifying a large trail
    neither holds the serving process's GIL nor its event loop)."""
    import asyncio

    from cryptography.hazmat.primitives import serialization

    from audit.db import open_engine

    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")

    async def run() -> dict[str, Any]:
        engine = open_engine(url, pool_size=1)
        try:
            cp = Path(checkpoint_dir) if checkpoint_dir else None
            return (await verify_database(engine, public, cp)).to_json()
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def verify_in_subprocess(
    url: str, public_pem: bytes, checkpoint_dir: str | None = None
) -> dict[str, Any]:
    """:func:`verify_url` in a child Python (``python -m audit.verify``), awaited without
    blocking: the database URL (it may hold a password) goes over the child's stdin, never its
    command line. RuntimeError if the child fails."""
    import asyncio
    import json
    import sys

    request = json.dumps(
        {"url": url, "public_pem": public_pem.decode("ascii"), "checkpoint_dir": checkpoint_dir}
    ).encode()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "audit.verify",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await child.communicate(request)
    except BaseException:
        if child.returncode is None:
            child.kill()
            await child.wait()
        raise
    if child.returncode != 0:
        raise RuntimeError(f"the verifying process exited with {child.returncode}")
    answer: dict[str, Any] = json.loads(out)
    return answer


if __name__ == "__main__":  # the child of verify_in_subprocess
    import json
    import sys

    job = json.load(sys.stdin)
    report = verify_url(job["url"], job["public_pem"].encode("ascii"), job["checkpoint_dir"])
    sys.stdout.write(json.dumps(report))
