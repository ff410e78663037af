"""Tables of the gateway core (SQLAlchemy Core: bulk paths stay fast, migrations stay explicit)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["api_keys", "budget_alerts", "budget_spend", "console_session_ends", "metadata"]

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),  # public part, shown in listings
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # HMAC-SHA256 hex
    sa.Column("secret_id", sa.String(16), nullable=False),  # which server secret made it
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("team", sa.String(200), nullable=True),
    sa.Column("tenant", sa.String(100), nullable=False, server_default="default"),
    sa.Column("jurisdiction", sa.String(10), nullable=False),
    sa.Column("sector", sa.String(40), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("description", sa.String(500), nullable=True),
    # The key's own limits (migration 0003): NULL = the configured default, 0 = no limit.
    sa.Column("requests_per_minute", sa.Integer, nullable=True),
    sa.Column("tokens_per_minute", sa.Integer, nullable=True),
    # When the key stops working (migration 0004; UTC); NULL: it does not expire.
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    # The key this one replaced by rotation (migration 0005); NULL: created afresh.
    sa.Column("rotated_from", sa.String(32), nullable=True),
    # The models the key may use (migration 0006; names or aliases); NULL: every model.
    sa.Column("models", sa.JSON, nullable=True),
    # The first key of its rotation chain (migration 0007), whose rate and token buckets a
    # rotated key shares; NULL: the key is its own.
    sa.Column("lineage", sa.String(32), nullable=True),
    # The key's masked display form (migration 0008): prefix, key id and the secret's last four
    # characters, e.g. pcs_0a1b2c3d4e5f_…Xy9Z; NULL for keys made before it was kept.
    sa.Column("hint", sa.String(80), nullable=True),
    # The key's own spend budget per period in micro-dollars (migration 0010): NULL = the
    # configured default (budgets.key_usd), 0 = none.
    sa.Column("budget_microusd", sa.BigInteger, nullable=True),
    # The client networks the key may be used from (migration 0012; CIDR blocks as
    # ipaddress writes them); NULL: anywhere.
    sa.Column("networks", sa.JSON, nullable=True),
    # The key's own limit of requests in flight at once (migration 0013): NULL = the configured
    # default (limits.max_parallel), 0 = none.
    sa.Column("max_parallel", sa.Integer, nullable=True),
    # The period the key's own budget renews on (migration 0014): day, week or month; NULL =
    # the configured budgets.period.
    sa.Column("budget_period", sa.String(8), nullable=True),
)

sa.Index("ix_api_keys_user", api_keys.c.user_id)

# Console sessions from single sign-on ended before they expired (migration 0009;
# gateway.console_sessions): one session (subject "sid:<id>": its holder signed out) or every
# session of a person made up to ended_at (subject "user:<name>": an administrator cut them off).
# A row is kept until no session it ends can still be alive (expires_at).
console_session_ends = sa.Table(
    "console_session_ends",
    metadata,
    sa.Column("subject", sa.String(210), primary_key=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# The spend ledger (migration 0010; gateway.budgets): micro-dollars spent, from the backends'
# prices, per scope ("key:<key id of the rotation chain's first key>", "user:<tenant>|<user>",
# "team:<name>") and period
# ("2026-11-30", "2026-W49", "2026-11"). Each replica adds what it charged every budgets.sync_s.
budget_spend = sa.Table(
    "budget_spend",
    metadata,
    sa.Column("scope", sa.String(320), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("microusd", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Budget alerts announced (migration 0010; gateway.alerts): one row per scope, period and share
# of the budget crossed (80 for 0.8), claimed by the replica that announces it, so that one does.
budget_alerts = sa.Table(
    "budget_alerts",
    metadata,
    sa.Column("scope", sa.String(320), primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("share_pct", sa.Integer, primary_key=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)
