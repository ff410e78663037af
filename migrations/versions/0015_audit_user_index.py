"""An index on the person of each audit entry on PostgreSQL, ``ix_audit_log_user (user_id,
seq)``: the trail's search by person (the console, ``GET /admin/audit/entries?user=``, exports)
reads that person's entries, newest first, instead of every entry newer than theirs — on a
grown trail, the difference between a millisecond and a scan of the table
(docs/benchmarks/audit.md#the-persons-index). Nothing on SQLite: there the index, kept in the
gateway's own process, doubled each append's CPU.

It is built without holding the trail's appends: an index on the partitioned parent alone
(not valid yet), then each partition's with ``CREATE INDEX CONCURRENTLY`` outside the
migration's transaction, attached to it; the parent's is valid once every partition's is (a
partition created meanwhile gets its own with it). A partition's index left invalid by a build
interrupted in an earlier run is dropped and built again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from audit.partitions import PARTITIONS

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

NAME = "ix_audit_log_user"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON ONLY audit_log (user_id, seq)")
        parts = [str(name) for name, _ in bind.execute(PARTITIONS).all()]
        attached = {
            str(row[0])
            for row in bind.execute(
                sa.text(
                    "SELECT t.relname FROM pg_inherits i JOIN pg_class x ON x.oid = i.inhrelid "
                    "JOIN pg_index ix ON ix.indexrelid = x.oid "
                    "JOIN pg_class t ON t.oid = ix.indrelid "
                    "WHERE i.inhparent = (SELECT oid FROM pg_class WHERE relname = :name)"
                ),
                {"name": NAME},
            ).all()
        }
        for part in parts:
            if part in attached:  # created with its partition since the parent's index was
                continue
            index = f"ix_{part}_user"
            invalid = bind.execute(
                sa.text(
                    "SELECT 1 FROM pg_index ix JOIN pg_class c ON c.oid = ix.indexrelid "
                    "WHERE c.relname = :name AND NOT ix.indisvalid"
                ),
                {"name": index},
            ).first()
            if invalid:  # a concurrent build interrupted in an earlier run: built again
                op.execute(f"DROP INDEX CONCURRENTLY {index}")
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {part} (user_id, seq)")
            op.execute(f"ALTER INDEX {NAME} ATTACH PARTITION {index}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # dropping the parent's index drops its partitions' with it
    op.drop_index(NAME, table_name="audit_log")
