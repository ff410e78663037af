"""Tables of the audit trail (SQLAlchemy Core; migration ``0002_audit``).

``audit_log`` is append-only: one row per log entry, ``seq`` = leaf index + 1, allocated under the
row lock of ``audit_head`` so every replica appends to one gap-free linear history. A purge clears
``body`` and keeps ``leaf_hash``, so the tree still verifies. ``audit_head`` holds the tree size and
the Merkle frontier (the current root without reading the log).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "audit_checkpoints",
    "audit_content",
    "audit_head",
    "audit_log",
    "audit_tenant_keys",
    "metadata",
]

metadata = sa.MetaData()

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),  # RFC 3339 UTC, microseconds, sorts as text
    sa.Column("writer", sa.String(80), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=True),
    sa.Column("jurisdiction", sa.String(10), nullable=True),
    sa.Column("user_id", sa.String(200), nullable=True),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("decision", sa.String(8), nullable=True),  # allow | deny | null
    sa.Column("backend", sa.String(100), nullable=True),
    sa.Column("rule_ids", sa.String(2000), nullable=True),  # ",r1,r2," for LIKE filters
    sa.Column("retention_class", sa.String(40), nullable=True),
    sa.Column("body", sa.Text, nullable=True),  # canonical JSON; NULL once purged
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("purged_at", sa.String(32), nullable=True),
)
sa.Index("ix_audit_log_request", audit_log.c.request_id)
sa.Index("ix_audit_log_ts", audit_log.c.ts)
# A person's entries, newest first: the trail's search by person (migration 0015). PostgreSQL
# only: on SQLite, in the gateway's own process, each entry's insert into it doubled the
# append's CPU (docs/benchmarks/audit.md#the-persons-index).
sa.Index("ix_audit_log_user", audit_log.c.user_id, audit_log.c.seq).ddl_if(dialect="postgresql")

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("signature", sa.String(200), nullable=False),
)

audit_tenant_keys = sa.Table(
    "audit_tenant_keys",
    metadata,
    sa.Column("tenant", sa.String(100), primary_key=True),
    sa.Column("key", sa.LargeBinary(64), nullable=False),  # wrapped: 62 bytes (audit.vault)
    sa.Column("created_at", sa.String(32), nullable=False),
)

audit_content = sa.Table(
    "audit_content",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("nonce", sa.LargeBinary(12), nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)
