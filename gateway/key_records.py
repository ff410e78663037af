"""A key's stored record and the checks on a new key's fields: principal, limits, expiry.

Shared by the key service (:mod:`gateway.keys`), the admin API and the CLI, so that every way of
making a key refuses the same things with the same messages (ValueError naming the field).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from audit.shapes import IDENTIFIER_CHARS, is_name
from gateway.principal import SECTORS, Principal, networks_of, parse_jurisdiction

__all__ = [
    "NAME_RULE",
    "KeyRecord",
    "record_to_row",
    "row_to_record",
    "usd",
    "validate_budget",
    "validate_description",
    "validate_expiry",
    "validate_grace",
    "validate_limits",
    "validate_models",
    "validate_networks",
    "validate_principal_fields",
]

_ROLE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}\Z")
NAME_RULE = f"1-200 {IDENTIFIER_CHARS}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    user: str
    team: str | None
    tenant: str
    jurisdiction: str
    sector: str
    roles: tuple[str, ...]
    tags: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    description: str | None
    requests_per_minute: int | None = None  # None: the configured default; 0: no limit
    tokens_per_minute: int | None = None
    expires_at: datetime | None = None  # UTC; None: never
    rotated_from: str | None = None  # the key this one replaced (keys rotate)
    models: tuple[str, ...] | None = None  # the models it may use; None: every model
    lineage: str | None = None  # the first key of its rotation chain; None: itself
    hint: str | None = None  # the masked display form (pcs_<id>_…abcd); None: made before 0008
    budget_microusd: int | None = None  # spend per period; None: budgets.key_usd; 0: none
    networks: tuple[str, ...] | None = None  # CIDR blocks it may be used from; None: anywhere
    max_parallel: int | None = None  # requests in flight at once; None: the default; 0: none
    budget_period: str | None = None  # its budget renews each day, week, month; None: the default

    @property
    def buckets(self) -> str:
        """Whose rate and token buckets this key draws on: its rotation chain's first key, so
        a rotated key and its predecessor in its grace period share one allowance."""
        return self.lineage or self.key_id

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

    def active(self, now: datetime | None = None) -> bool:
        """Neither revoked nor expired: a key that still opens the gateway."""
        return self.revoked_at is None and not self.expired(now)

    def principal(self) -> Principal:
        return Principal(
            key_id=self.key_id,
            user=self.user,
            team=self.team,
            tenant=self.tenant,
            jurisdiction=self.jurisdiction,
            sector=self.sector,
            roles=self.roles,
            tags=self.tags,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            max_parallel=self.max_parallel,
            models=None if self.models is None else frozenset(m.casefold() for m in self.models),
            buckets=self.buckets,
            budget_microusd=self.budget_microusd,
            budget_period=self.budget_period,
            networks=networks_of(self.networks),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "user": self.user,
            "team": self.team,
            "tenant": self.tenant,
            "jurisdiction": self.jurisdiction,
            "sector": self.sector,
            "roles": list(self.roles),
            "tags": list(self.tags),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "description": self.description,
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "max_parallel": self.max_parallel,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "expired": self.expired(),
            "rotated_from": self.rotated_from,
            "lineage": self.buckets,
            "models": None if self.models is None else list(self.models),
            "masked": self.hint,
            "budget_usd": usd(self.budget_microusd),
            "budget_period": self.budget_period,
            "networks": None if self.networks is None else list(self.networks),
        }


def validate_principal_fields(
    user: str,
    jurisdiction: str,
    sector: str,
    team: str | None,
    roles: tuple[str, ...],
    tags: tuple[str, ...],
    tenant: str = "default",
) -> str:
    """Check a new key's fields; return the normalised jurisdiction. ValueError names the field.
    Names are identifiers as the audit record keeps them (:func:`audit.shapes.is_name`): a
    name the record would drop would leave its user and team columns empty."""
    if not is_name(tenant):
        raise ValueError(f"tenant: {NAME_RULE}")
    if not is_name(user):
        raise ValueError(f"user: {NAME_RULE}")
    if team is not None and not is_name(team):
        raise ValueError(f"team: {NAME_RULE}")
    try:
        if not isinstance(jurisdiction, str):
            raise ValueError("ISO 3166-1 alpha-2 or ISO 3166-2 text, e.g. AU or AU-NSW")
        country, sub = parse_jurisdiction(jurisdiction)
    except ValueError as exc:
        raise ValueError(f"jurisdiction: {exc}") from None
    if sector not in SECTORS:
        raise ValueError(f"sector: one of {', '.join(SECTORS)}")
    for r in roles:
        if not _ROLE.match(r):
            raise ValueError("role: lowercase letters, digits and . _ : - (max 64)")
    for t in tags:
        if not is_name(t) or len(t) > 100:
            raise ValueError(f"tag: 1-100 {IDENTIFIER_CHARS}")
    return sub or country


def row_to_record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        key_id=m["key_id"],
        user=m["user_id"],
        team=m["team"],
        tenant=m["tenant"],
        jurisdiction=m["jurisdiction"],
        sector=m["sector"],
        roles=tuple(m["roles"] or ()),
        tags=tuple(m["tags"] or ()),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        description=m["description"],
        requests_per_minute=m["requests_per_minute"],
        tokens_per_minute=m["tokens_per_minute"],
        expires_at=_utc(m["expires_at"]),
        rotated_from=m["rotated_from"],
        lineage=m["lineage"],
        models=None if m["models"] is None else tuple(m["models"]),
        hint=m["hint"],
        budget_microusd=m["budget_microusd"],
        networks=None if m["networks"] is None else tuple(m["networks"]),
        max_parallel=m["max_parallel"],
        budget_period=m["budget_period"],
    )


def record_to_row(record: KeyRecord) -> dict[str, object]:
    """The ``api_keys`` columns of a record (:func:`row_to_record`'s inverse; the digest and
    the secret id are the key service's to add)."""
    return {
        "key_id": record.key_id,
        "user_id": record.user,
        "team": record.team,
        "tenant": record.tenant,
        "jurisdiction": record.jurisdiction,
        "sector": record.sector,
        "roles": list(record.roles),
        "tags": list(record.tags),
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "description": record.description,
        "requests_per_minute": record.requests_per_minute,
        "tokens_per_minute": record.tokens_per_minute,
        "expires_at": record.expires_at,
        "rotated_from": record.rotated_from,
        "models": None if record.models is None else list(record.models),
        "lineage": record.lineage,
        "budget_microusd": record.budget_microusd,
        "networks": None if record.networks is None else list(record.networks),
        "max_parallel": record.max_parallel,
        "budget_period": record.budget_period,
    }


def _utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_MAX_LIFETIME = timedelta(days=3660)


def validate_expiry(expires_at: datetime | None, now: datetime | None = None) -> datetime | None:
    """A new key's expiry as UTC: in the future, at most ten years away (a naive time is read
    as UTC). ValueError names the field."""
    if expires_at is None:
        return None
    at = _utc(expires_at)
    assert at is not None
    now = now or datetime.now(UTC)
    if at <= now:
        raise ValueError("expires_at: a time in the future")
    if at - now > _MAX_LIFETIME:
        raise ValueError("expires_at: at most ten years from now")
    return at


_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")  # as the catalogue's names
MAX_MODELS = 100


def validate_models(models: object) -> tuple[str, ...] | None:
    """A key's model allow-list: None (every model) or 1-100 model names or aliases as the
    catalogue spells them (a name need not be served yet: the catalogue can grow by reload).
    ValueError names the field."""
    if models is None:
        return None
    if (
        not isinstance(models, list | tuple)
        or not 1 <= len(models) <= MAX_MODELS
        or not all(isinstance(m, str) and _MODEL.match(m) for m in models)
    ):
        raise ValueError(
            f"models: null, or a list of 1-{MAX_MODELS} model names (letters, digits, . _ : -)"
        )
    return tuple(dict.fromkeys(models))


MAX_GRACE_S = 30 * 86400


def validate_grace(grace_s: object) -> int:
    """How long a rotated key keeps working beside its successor: whole seconds, 0 (revoked at
    once) to 30 days. ValueError names the field."""
    if type(grace_s) is not int or not 0 <= grace_s <= MAX_GRACE_S:
        raise ValueError(f"grace_seconds: a whole number from 0 (revoke at once) to {MAX_GRACE_S}")
    return grace_s


_MAX_RATE = 1_000_000_000


MAX_PARALLEL = 100_000


def validate_limits(
    requests_per_minute: object, tokens_per_minute: object, max_parallel: object = None
) -> None:
    """A key's own limits: None (the configured default) or a whole number 0..10^9 (requests
    in flight: 0..100,000; 0: none). ValueError names the field."""
    for name, v, top in (
        ("requests_per_minute", requests_per_minute, _MAX_RATE),
        ("tokens_per_minute", tokens_per_minute, _MAX_RATE),
        ("max_parallel", max_parallel, MAX_PARALLEL),
    ):
        if v is None:
            continue
        if type(v) is not int or not 0 <= v <= top:
            raise ValueError(f"{name}: a whole number from 0 (no limit) to {top}, or null")


BUDGET_PERIODS = ("day", "week", "month")


def validate_budget_period(period: object) -> str | None:
    """A key's own budget period: day, week or month, or None (``budgets.period``)."""
    if period is not None and period not in BUDGET_PERIODS:
        raise ValueError("budget_period: day, week or month, or null (budgets.period)")
    return period


def validate_description(description: object) -> None:
    """A key's free description: text of at most 500 characters (the column's size), no control
    characters but tab and newline (PostgreSQL refuses a NUL)."""
    if description is not None and (
        not isinstance(description, str)
        or len(description) > 500
        or any(ord(c) < 32 and c not in "\t\n" for c in description)
    ):
        raise ValueError("description: text of at most 500 characters, no control characters")


MAX_BUDGET_USD = 1_000_000_000


def validate_budget(budget_usd: object) -> int | None:
    """A key's own spend budget per period, given in US dollars: None (the configured default,
    ``budgets.key_usd``) or a number 0..10^9 (0: no budget; cents and below kept to the
    micro-dollar). Returns micro-dollars. ValueError names the field."""
    if budget_usd is None:
        return None
    if (
        isinstance(budget_usd, bool)
        or not isinstance(budget_usd, int | float)
        or not 0 <= budget_usd <= MAX_BUDGET_USD  # NaN fails both
    ):
        raise ValueError(
            f"budget_usd: US dollars per period, from 0 (no budget) to {MAX_BUDGET_USD}, or null"
        )
    return micro(budget_usd)


def micro(dollars: float) -> int:
    """Dollars as whole micro-dollars, the unit spend and budgets are kept in."""
    return round(dollars * 1_000_000)


def usd(microusd: int | None) -> float | None:
    """Micro-dollars as dollars for JSON (None stays None)."""
    return None if microusd is None else microusd / 1_000_000


def dollars_text(microusd: int) -> str:
    """Micro-dollars for people to read: ``US$1,234.50``."""
    return f"US${microusd / 1_000_000:,.2f}"


MAX_NETWORKS = 50


def validate_networks(networks: object) -> tuple[str, ...] | None:
    """A key's network allow-list: None (anywhere) or 1-50 CIDR blocks, IPv4 or IPv6
    (``10.20.0.0/16``, ``2001:db8::/32``; a bare address is its own /32 or /128; host bits
    are cleared: ``10.1.2.3/8`` is ``10.0.0.0/8``), as ``ipaddress`` writes them, without
    repeats. ValueError names the field."""
    if networks is None:
        return None
    rule = (
        f"networks: null, or a list of 1-{MAX_NETWORKS} CIDR blocks (10.20.0.0/16, 2001:db8::/32)"
    )
    if not isinstance(networks, list | tuple) or not 1 <= len(networks) <= MAX_NETWORKS:
        raise ValueError(rule)
    out = []
    for n in networks:
        if not isinstance(n, str) or len(n) > 64:
            raise ValueError(rule)
        try:
            out.append(str(ipaddress.ip_network(n.strip(), strict=False)))
        except ValueError:
            raise ValueError(rule) from None
    return tuple(dict.fromkeys(out))
