"""RFC 6962/9162 Merkle tree: roots, inclusion and consistency proofs, tampered proofs rejected."""

from __future__ import annotations

import hashlib

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def _mth(leaves: list[bytes]) -> bytes:
    """The RFC's recursive definition, as the oracle."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(70)]


def test_hashes_use_rfc6962_domain_separation() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    # RFC 6962 test vector: the hash of the empty leaf.
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64, 70])
def test_frontier_root_equals_recursive_definition(n: int) -> None:
    f = Frontier()
    f.extend(LEAVES[:n])
    assert f.root() == _mth(LEAVES[:n])
    again = Frontier.from_bytes(n, f.to_bytes())
    again.append(LEAVES[n % 70])
    assert again.root() == _mth([*LEAVES[:n], LEAVES[n % 70]])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 21, 33])
def test_every_inclusion_proof_verifies(n: int) -> None:
    root = _mth(LEAVES[:n])
    for i in range(n):
        verify_inclusion(i, n, LEAVES[i], inclusion_proof(LEAVES[:n], i), root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 21, 33])
def test_every_consistency_proof_verifies(n: int) -> None:
    for m in range(1, n + 1):
        verify_consistency(
            m, n, _mth(LEAVES[:m]), _mth(LEAVES[:n]), consistency_proof(LEAVES[:n], m)
        )


def test_inclusion_proof_fails_for_another_leaf_index_or_root() -> None:
    proof = inclusion_proof(LEAVES[:13], 6)
    root = _mth(LEAVES[:13])
    bad = [
        (6, 13, LEAVES[7], proof, root),  # another leaf
        (7, 13, LEAVES[6], proof, root),  # another index
        (6, 13, LEAVES[6], proof, _mth(LEAVES[:12])),  # another root
        (6, 13, LEAVES[6], proof[:-1], root),  # shortened proof
        (6, 13, LEAVES[6], [*proof, LEAVES[0]], root),  # lengthened proof
        (13, 13, LEAVES[6], proof, root),  # index beyond the tree
    ]
    for args in bad:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


def test_consistency_proof_fails_when_history_was_rewritten() -> None:
    rewritten = list(LEAVES[:20])
    rewritten[3] = leaf_hash(b"edited")
    proof = consistency_proof(rewritten, 8)
    with pytest.raises(ProofError):
        verify_consistency(8, 20, _mth(LEAVES[:8]), root_of(rewritten), proof)
    with pytest.raises(ProofError):
        verify_consistency(8, 20, _mth(LEAVES[:8]), _mth(LEAVES[:20]), proof[1:])


def test_frontier_rejects_hashes_that_do_not_match_the_size() -> None:
    with pytest.raises(ValueError):
        Frontier(3, [LEAVES[0]])
