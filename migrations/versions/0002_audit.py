"""Audit trail: append-only Merkle log, head, checkpoints, encrypted content capture.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("writer", sa.String(80), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=True),
        sa.Column("jurisdiction", sa.String(10), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("decision", sa.String(8), nullable=True),
        sa.Column("backend", sa.String(100), nullable=True),
        sa.Column("rule_ids", sa.String(2000), nullable=True),
        sa.Column("retention_class", sa.String(40), nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("purged_at", sa.String(32), nullable=True),
    )
    op.create_index("ix_audit_log_request", "audit_log", ["request_id"])
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "frontier": b""}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
    )
    op.create_table(
        "audit_tenant_keys",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "audit_content",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_content", "audit_tenant_keys", "audit_checkpoints", "audit_head"):
        op.drop_table(table)
    op.drop_index("ix_audit_log_ts", table_name="audit_log")
    op.drop_index("ix_audit_log_request", table_name="audit_log")
    op.drop_table("audit_log")
