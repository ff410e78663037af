"""The audit trail partitioned by month on PostgreSQL (``audit.partitions``); nothing on SQLite.

The existing rows become the partition of everything before next month (renamed, not copied;
its primary key rebuilt as ``(seq, ts)``), next months get their own partitions, and a default
partition takes what no month covers. Downgrade copies the rows back into one plain table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from audit.partitions import partition_statements

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in partition_statements():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in (
        "CREATE TABLE audit_log_plain (LIKE audit_log INCLUDING DEFAULTS INCLUDING STORAGE)",
        "INSERT INTO audit_log_plain SELECT * FROM audit_log",
        "DROP TABLE audit_log",
        "ALTER TABLE audit_log_plain RENAME TO audit_log",
        "ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq)",
        "CREATE INDEX ix_audit_log_request ON audit_log (request_id)",
        "CREATE INDEX ix_audit_log_ts ON audit_log (ts)",
    ):
        op.execute(statement)
