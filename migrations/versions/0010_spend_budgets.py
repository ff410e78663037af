"""Spend budgets: a key's own budget (``api_keys.budget_microusd``: NULL = the configured
default, 0 = none); the spend ledger (``budget_spend``: micro-dollars spent per scope —
``key:<id>``, ``user:<tenant>|<user>`` or ``team:<name>`` — and period, e.g. ``2026-11``, from
the backends' prices); and the alerts sent (``budget_alerts``: one row per scope, period and
share of the budget crossed, so that one replica announces each).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("budget_microusd", sa.BigInteger, nullable=True))
    op.create_table(
        "budget_spend",
        sa.Column("scope", sa.String(320), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("microusd", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("scope", sa.String(320), primary_key=True),
        sa.Column("period", sa.String(16), primary_key=True),
        sa.Column("share_pct", sa.Integer, primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_alerts")
    op.drop_table("budget_spend")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("budget_microusd")
