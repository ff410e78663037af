"""Key lineage: a key made by rotation shares the rate and token buckets of the first key of its
chain (NULL: the key is its own lineage). Keys rotated before this revision are filled in.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("lineage", sa.String(32), nullable=True))
    conn = op.get_bind()
    keys = sa.table(
        "api_keys",
        sa.column("key_id", sa.String),
        sa.column("rotated_from", sa.String),
        sa.column("lineage", sa.String),
    )
    parent = dict(conn.execute(sa.select(keys.c.key_id, keys.c.rotated_from)).all())
    for key_id, rotated_from in parent.items():
        if rotated_from is None:
            continue
        root, seen = rotated_from, {key_id}
        while parent.get(root) is not None and root not in seen:  # a cycle cannot be made; guard
            seen.add(root)
            root = parent[root]
        conn.execute(keys.update().where(keys.c.key_id == key_id).values(lineage=root))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("lineage")
