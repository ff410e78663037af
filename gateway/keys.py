"""API keys: generated with ``secrets``, shown once, stored only as keyed hashes.

A key looks like ``pcs_<12 hex key id>_<43 urlsafe chars>``. The database holds
HMAC-SHA256(server secret, key); lookups are by that digest through a parameterised query.
Anything not shaped like a key is refused before any database work, with the same 401 body.
A key may expire (``expires_at``, set at creation only, like a certificate's): from then on it
gets the same 401 as an unknown key, and no replica's cache outlives the expiry.
Revocation takes effect at once on this replica; on the others at once when they share a Redis
(:mod:`gateway.revocations`), else within ``keys.cache_ttl_s``.

With a ``recorder`` (the gateway's audit sink; the CLI's own append), every key's life is in the
audit trail as entries of kind ``key``: who created it for which principal, who changed its
limits, who revoked it. Creating a key and changing its limits grant access, so they are recorded
first and do not happen if the record cannot be made (:class:`KeyNotRecorded`); a revocation
takes away access, so it always happens, and a failure to record it is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.shapes import IDENTIFIER_CHARS, is_name
from gateway.errors import Cause, GatewayError
from gateway.principal import SECTORS, Principal, parse_jurisdiction
from gateway.secrets_store import ServerSecret
from gateway.storage.schema import api_keys

if TYPE_CHECKING:
    from gateway.revocations import RevocationFeed

__all__ = [
    "IssuedKey",
    "KeyNotRecorded",
    "KeyRecord",
    "KeyService",
    "Recorder",
    "parse_time",
    "validate_expiry",
    "validate_limits",
    "validate_principal_fields",
]

# (kind, event) -> the entry's sequence number: an audit sink's ``record``.
Recorder = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


class KeyNotRecorded(RuntimeError):
    """The audit trail did not take the key's record, so the key was not created or changed."""


log = logging.getLogger("portcullis.keys")

_ROLE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}\Z")
_NAME_RULE = f"1-200 {IDENTIFIER_CHARS}"
UNAUTHENTICATED = "Invalid API key. Provide a valid key as 'Authorization: Bearer <key>'."


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    key_id: str


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

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))

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
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "expired": self.expired(),
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
        raise ValueError(f"tenant: {_NAME_RULE}")
    if not is_name(user):
        raise ValueError(f"user: {_NAME_RULE}")
    if team is not None and not is_name(team):
        raise ValueError(f"team: {_NAME_RULE}")
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


def _row_to_record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
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
    )


def _utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones, stored as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_MAX_LIFETIME = timedelta(days=3660)


def parse_time(value: str) -> datetime:
    """ISO 8601 date or date-time, as UTC (no offset: UTC; ``Z`` accepted). ValueError."""
    at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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


_MAX_RATE = 1_000_000_000


def validate_limits(requests_per_minute: object, tokens_per_minute: object) -> None:
    """A key's own limits: None (the configured default) or a whole number 0..10^9 (0: none).
    ValueError names the field."""
    for name, v in (
        ("requests_per_minute", requests_per_minute),
        ("tokens_per_minute", tokens_per_minute),
    ):
        if v is None:
            continue
        if type(v) is not int or not 0 <= v <= _MAX_RATE:
            raise ValueError(f"{name}: a whole number from 0 (no limit) to {_MAX_RATE}, or null")


class KeyService:
    def __init__(
        self,
        engine: AsyncEngine,
        secret: ServerSecret,
        prefix: str = "pcs",
        cache_ttl_s: float = 5.0,
        cache_size: int = 10_000,
        revocations: RevocationFeed | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._engine = engine
        self._recorder = recorder
        self._secret = secret
        self._hmac_key = secret.derive("api-key")
        self._prefix = prefix
        self._shape = re.compile(rf"^{prefix}_[0-9a-f]{{12}}_[A-Za-z0-9_-]{{43}}$")
        self._ttl = cache_ttl_s
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._cache_size = cache_size
        # Digests of well-shaped keys the database did not know: a client retrying with a
        # revoked or mistyped key costs no lookup the second time. Safe to keep: a digest
        # that matched no active key never will (new keys are random, revocation is final).
        self._unknown: OrderedDict[str, None] = OrderedDict()
        # With a feed, the cache is trusted only while the feed is live (see gateway.revocations).
        self._feed = revocations
        self._generation = 0  # bumped on every invalidation; see authenticate

    async def start(self) -> None:
        if self._feed is not None:
            await self._feed.start(self.invalidate)

    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.close()

    def invalidate(self) -> None:
        """Forget every cached principal (a key was revoked, here or on another replica)."""
        self._generation += 1
        self._cache.clear()

    def digest(self, key: str) -> str:
        return hmac.new(self._hmac_key, key.encode("ascii"), hashlib.sha256).hexdigest()

    async def create(
        self,
        *,
        user: str,
        jurisdiction: str,
        sector: str,
        team: str | None = None,
        roles: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
        tenant: str = "default",
        description: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        actor: str = "system",
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        jurisdiction = validate_principal_fields(
            user, jurisdiction, sector, team, roles, tags, tenant
        )
        validate_limits(requests_per_minute, tokens_per_minute)
        expires_at = validate_expiry(expires_at)
        if description is not None and (
            not isinstance(description, str)
            or len(description) > 500
            or any(ord(c) < 32 and c not in "\t\n" for c in description)
        ):
            raise ValueError("description: text of at most 500 characters, no control characters")
        key_id = secrets.token_hex(6)
        key = f"{self._prefix}_{key_id}_{secrets.token_urlsafe(32)}"
        principal = Principal(
            key_id, user, jurisdiction, sector, team, tuple(roles), tuple(tags), tenant
        )
        await self._record(
            "create",
            principal,
            actor,
            requests_per_minute,
            tokens_per_minute,
            expires_at=expires_at,
            required=True,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    digest=self.digest(key),
                    secret_id=self._secret.secret_id,
                    user_id=user,
                    team=team,
                    tenant=tenant,
                    jurisdiction=jurisdiction,
                    sector=sector,
                    roles=list(roles),
                    tags=list(tags),
                    created_at=datetime.now(UTC),
                    description=description,
                    requests_per_minute=requests_per_minute,
                    tokens_per_minute=tokens_per_minute,
                    expires_at=expires_at,
                )
            )
        return IssuedKey(key=key, key_id=key_id)

    async def list(
        self,
        include_revoked: bool = False,
        *,
        user: str | None = None,
        team: str | None = None,
        jurisdiction: str | None = None,
    ) -> list[KeyRecord]:
        """Keys in creation order; ``jurisdiction`` ``AU`` also matches ``AU-NSW`` keys.
        ValueError names a filter that is not an identifier (no key could match it)."""
        q = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            q = q.where(api_keys.c.revoked_at.is_(None))
        for name, value in (("user", user), ("team", team), ("jurisdiction", jurisdiction)):
            if value is not None and not is_name(value):
                raise ValueError(f"{name}: {_NAME_RULE}")
        if user is not None:
            q = q.where(api_keys.c.user_id == user)
        if team is not None:
            q = q.where(api_keys.c.team == team)
        if jurisdiction is not None:
            j = jurisdiction.upper()
            q = q.where(
                sa.or_(api_keys.c.jurisdiction == j, api_keys.c.jurisdiction.startswith(j + "-"))
            )
        async with self._engine.connect() as conn:
            return [_row_to_record(r) for r in (await conn.execute(q)).all()]

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))
            ).first()
        return _row_to_record(row) if row else None

    async def revoke(self, key_id: str, actor: str = "system") -> bool:
        async with self._engine.begin() as conn:
            res = await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if not res.rowcount:
            self.invalidate()
            return False
        await self._announce(key_id, "revoked", "stop accepting it")
        record = await self.get(key_id)
        if record is not None:
            await self._record("revoke", record.principal(), actor, required=False)
        return True

    async def set_limits(
        self,
        key_id: str,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        actor: str = "system",
    ) -> bool:
        """Give an active key its own limits (None: back to the configured default). Applies
        at once on this replica; on the others at once with Redis, else within
        ``keys.cache_ttl_s`` (the same news as a revocation: forget cached principals)."""
        validate_limits(requests_per_minute, tokens_per_minute)
        current = await self.get(key_id)
        if current is None or current.revoked_at is not None or current.expired():
            return False
        await self._record(
            "limits",
            current.principal(),
            actor,
            requests_per_minute,
            tokens_per_minute,
            required=True,
        )
        async with self._engine.begin() as conn:
            res = await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(
                    requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
                )
            )
        if res.rowcount:
            await self._announce(key_id, "changed", "use its new limits")
        return bool(res.rowcount)

    async def _record(
        self,
        op: str,
        principal: Principal,
        actor: str,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        *,
        expires_at: datetime | None = None,
        required: bool,
    ) -> None:
        """Append the ``key`` entry: the principal as requests record it, who, what."""
        if self._recorder is None:
            return
        action: dict[str, Any] = {"op": op}
        if op != "revoke":
            action["requests_per_minute"] = requests_per_minute
            action["tokens_per_minute"] = tokens_per_minute
        if op == "create":
            action["expires_at"] = (
                expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if expires_at is not None else None
            )
        event = {"actor": actor, "principal": principal.policy_view(), "action": action}
        try:
            await self._recorder("key", event)
        except Exception as exc:  # noqa: BLE001 - any store failure
            if required:
                raise KeyNotRecorded(type(exc).__name__) from None
            log.error(
                "key %s %sd, but the audit trail did not record it (%s)",
                principal.key_id,
                op,
                type(exc).__name__,
            )

    async def _announce(self, key_id: str, what: str, effect: str) -> None:
        """Forget cached principals here, and tell the other replicas to (with a feed)."""
        self.invalidate()
        if self._feed is None:
            return
        try:
            await self._feed.publish(key_id)
        except Exception as exc:  # noqa: BLE001 - the change stands; only the news is late
            log.warning(
                "key %s %s; telling the other replicas failed (%s): they %s within "
                "keys.cache_ttl_s",
                key_id,
                what,
                type(exc).__name__,
                effect,
            )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an ``Authorization`` header value, or the one uniform 401."""
        key = _bearer(authorization)
        if key is None or not self._shape.match(key):
            raise GatewayError(Cause.UNAUTHENTICATED, UNAUTHENTICATED)
        digest = self.digest(key)
        now = time.monotonic()
        # A replica that cannot hear revocations from the others does not trust its cache.
        trusted = self._ttl > 0 and (self._feed is None or self._feed.live)
        hit = self._cache.get(digest) if trusted else None
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(digest)
            return hit[1]
        if digest in self._unknown:
            raise GatewayError(Cause.UNAUTHENTICATED, UNAUTHENTICATED)
        generation = self._generation
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.digest == digest, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()
        record = None if row is None else _row_to_record(row)
        wall = datetime.now(UTC)
        if record is None or record.expired(wall):
            # An expired key stays expired: remembered like an unknown one (same 401).
            self._remember(self._unknown, digest, None)
            raise GatewayError(Cause.UNAUTHENTICATED, UNAUTHENTICATED)
        principal = record.principal()
        # Not cached if a revocation came while the row was read: the row may predate it; and
        # never past the key's expiry.
        if trusted and generation == self._generation:
            until = now + self._ttl
            if record.expires_at is not None:
                until = min(until, now + (record.expires_at - wall).total_seconds())
            self._remember(self._cache, digest, (until, principal))
        return principal

    def _remember(self, cache: OrderedDict[str, Any], digest: str, value: Any) -> None:
        """Add to one of the digest caches, dropping its oldest entry beyond ``cache_size``."""
        cache[digest] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def _bearer(value: str | None) -> str | None:
    if not value or len(value) > 256:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token if token.isascii() and token.isprintable() else None
