"""API keys: generated with ``secrets``, shown once, stored only as keyed hashes.

A key looks like ``pcs_<12 hex key id>_<43 urlsafe chars>``. The database holds
HMAC-SHA256(server secret, key); lookups are by that digest through a parameterised query.
Anything not shaped like a key is refused before any database work, with the same 401 body.
A key may expire (``expires_at``, set at creation and movable while the key is active): from
then on it gets the same 401 as an unknown key, and no replica's cache outlives the expiry.
A key may be limited to some models (``models``): others are "not found" to it, in ``/v1/models``
as in requests, whatever policy would permit. Rotating a key issues a successor for the same
principal, limits, models, expiry and description, and
revokes the old key at once or lets it expire after a grace period (``rotated_from`` links them).
Revocation takes effect at once on this replica; on the others at once when they share a Redis
(:mod:`gateway.revocations`), else within ``keys.cache_ttl_s``.

With a ``recorder`` (the gateway's audit sink; the CLI's own append), every key's life is in the
audit trail as entries of kind ``key``: who created it for which principal, who changed its
limits or expiry, who rotated it, who revoked it. Creating, rotating, changing limits or expiry
can grant access, so they are recorded first and do not happen if the record cannot be made
(:class:`KeyNotRecorded`); a revocation takes away access, so it always happens, and a failure to
record it is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Cause, GatewayError
from gateway.key_records import (
    KeyRecord,
    row_to_record,
    validate_description,
    validate_expiry,
    validate_grace,
    validate_limits,
    validate_models,
    validate_networks,
    validate_principal_fields,
)
from gateway.key_store import KeyNotRecorded, KeyStore, Recorder, joined
from gateway.principal import Principal
from gateway.storage.db import is_outage
from gateway.storage.schema import api_keys
from gateway.strays import abandon

__all__ = ["AddressNotAllowed", "IssuedKey", "KeyNotRecorded", "KeyService", "Recorder"]


log = logging.getLogger("portcullis.keys")

UNAUTHENTICATED = "Invalid API key. Provide a valid key as 'Authorization: Bearer <key>'."


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    key_id: str


class KeyService(KeyStore):
    """Keys' lives (create, change, rotate, revoke) and authentication (the hot path)."""

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
        models: Sequence[str] | None = None,
        budget_microusd: int | None = None,
        networks: Sequence[str] | None = None,
    ) -> IssuedKey:
        jurisdiction = validate_principal_fields(
            user, jurisdiction, sector, team, roles, tags, tenant
        )
        validate_limits(requests_per_minute, tokens_per_minute)
        expires_at = validate_expiry(expires_at)
        validate_description(description)
        allowed = validate_models(models)
        nets = validate_networks(networks)
        key_id, key = self._new_key()
        record = KeyRecord(
            key_id=key_id,
            user=user,
            team=team,
            tenant=tenant,
            jurisdiction=jurisdiction,
            sector=sector,
            roles=tuple(roles),
            tags=tuple(tags),
            created_at=datetime.now(UTC),
            revoked_at=None,
            description=description,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            expires_at=expires_at,
            models=allowed,
            budget_microusd=_budget(budget_microusd),
            networks=nets,
        )
        await self._record(
            "create",
            record.principal(),
            actor,
            required=True,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            expires_at=expires_at,
            models=joined(allowed),
            budget_microusd=budget_microusd,
            networks=joined(nets),
        )
        async with self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(self._row(record, key)))
        return IssuedKey(key=key, key_id=key_id)

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

    async def revoke_user(
        self, user: str, actor: str = "system", tenant: str | None = None
    ) -> list[str]:
        """Revoke every active key in a person's name (someone leaving), in any tenant or in
        ``tenant``; each revocation recorded as one by one. The ids revoked, oldest first.
        ValueError for a name that is not an identifier."""
        revoked = []
        for record in await self.list(user=user):
            if tenant is not None and record.tenant != tenant:
                continue
            if await self.revoke(record.key_id, actor):
                revoked.append(record.key_id)
        return revoked

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
        return await self._change(
            key_id,
            "limits",
            actor,
            {"requests_per_minute": requests_per_minute, "tokens_per_minute": tokens_per_minute},
            effect="use its new limits",
        )

    async def set_budget(
        self, key_id: str, budget_microusd: int | None, actor: str = "system"
    ) -> bool:
        """Give an active key its own spend budget per period, micro-dollars (None: back to
        ``budgets.key_usd``; 0: none). Applies on the replicas as a limit change does; what the
        key has spent this period is kept (gateway.budgets)."""
        return await self._change(
            key_id,
            "budget",
            actor,
            {"budget_microusd": _budget(budget_microusd)},
            effect="use its new budget",
        )

    async def set_expiry(
        self, key_id: str, expires_at: datetime | None, actor: str = "system"
    ) -> bool:
        """Move an active key's expiry (None: it no longer expires). An expired or revoked key
        stays so: False, as for an unknown id. Applies on the replicas as a limit change does."""
        expires_at = validate_expiry(expires_at)
        return await self._change(
            key_id, "expiry", actor, {"expires_at": expires_at}, effect="use its new expiry"
        )

    async def set_models(
        self, key_id: str, models: Sequence[str] | None, actor: str = "system"
    ) -> bool:
        """Give an active key its model allow-list (None: every model policy permits). Applies
        on the replicas as a limit change does."""
        allowed = validate_models(models)
        return await self._change(
            key_id,
            "models",
            actor,
            {"models": None if allowed is None else list(allowed)},
            effect="use its new model list",
            recorded={"models": joined(allowed)},
        )

    async def set_networks(
        self, key_id: str, networks: Sequence[str] | None, actor: str = "system"
    ) -> bool:
        """Keep an active key to these client networks (None: anywhere). Applies on the
        replicas as a limit change does."""
        nets = validate_networks(networks)
        return await self._change(
            key_id,
            "networks",
            actor,
            {"networks": None if nets is None else list(nets)},
            effect="use its new networks",
            recorded={"networks": joined(nets)},
        )

    async def _active(self, key_id: str) -> KeyRecord | None:
        """The key's record if it is active (not revoked, not expired), else None."""
        record = await self.get(key_id)
        if record is None or record.revoked_at is not None or record.expired():
            return None
        return record

    async def _change(
        self,
        key_id: str,
        op: str,
        actor: str,
        values: dict[str, Any],
        *,
        effect: str,
        recorded: dict[str, Any] | None = None,
    ) -> bool:
        """One change to an active key's row (``values``): recorded first (``recorded``, by
        default the values themselves), then made, then announced to the replicas. False for
        a key that is not active, as for an unknown id."""
        current = await self._active(key_id)
        if current is None:
            return False
        action = values if recorded is None else recorded
        await self._record(op, current.principal(), actor, required=True, **action)
        async with self._engine.begin() as conn:
            res = await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(**values)
            )
        if res.rowcount:
            await self._announce(key_id, "changed", effect)
        return bool(res.rowcount)

    async def rotate(
        self, key_id: str, *, grace_s: int = 0, actor: str = "system"
    ) -> tuple[IssuedKey, KeyRecord] | None:
        """Issue a successor to an active key: the same principal, limits, expiry and
        description under a new key id (``rotated_from`` names the old one). The old key is
        revoked at once (``grace_s`` 0) or expires ``grace_s`` seconds from now (never later
        than it would have). Returns the new key and the old key's record after the change;
        None for a key that is not active. Recorded first, as a creation is; the successor is
        written and the old key changed in one transaction."""
        grace_s = validate_grace(grace_s)
        old = await self._active(key_id)
        if old is None:
            return None
        now = datetime.now(UTC)
        until = None
        if grace_s:
            until = now + timedelta(seconds=grace_s)
            if old.expires_at is not None:
                until = min(until, old.expires_at)
        new_id, key = self._new_key()
        successor = dataclasses.replace(
            old,
            key_id=new_id,
            created_at=now,
            revoked_at=None,
            rotated_from=key_id,
            lineage=old.buckets,  # one allowance across the chain: no fresh buckets by rotating
        )
        await self._record(
            "rotate",
            successor.principal(),
            actor,
            required=True,
            replaces=key_id,
            grace_seconds=grace_s,
            requests_per_minute=old.requests_per_minute,
            tokens_per_minute=old.tokens_per_minute,
            expires_at=old.expires_at,
            models=joined(old.models),
            budget_microusd=old.budget_microusd,
            networks=joined(old.networks),
        )
        async with self._engine.begin() as conn:
            retire = api_keys.update().where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)
            )
            res = await conn.execute(
                retire.values(expires_at=until) if grace_s else retire.values(revoked_at=now)
            )
            if not res.rowcount:  # revoked meanwhile: no successor
                return None
            await conn.execute(api_keys.insert().values(self._row(successor, key)))
        await self._announce(key_id, "rotated", "stop accepting it or see its new expiry")
        retired = await self.get(key_id)
        assert retired is not None
        return IssuedKey(key=key, key_id=new_id), retired

    async def _lookup(self, digest: str) -> Any:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.digest == digest, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()

    async def authenticate(self, authorization: str | None, client: str | None = None) -> Principal:
        """The principal for an ``Authorization`` header value, or the one uniform 401; for a
        key kept to some networks (``networks``), a 403 ``address_not_allowed`` unless
        ``client`` (the caller's address as the server saw it) is in one of them — an unknown
        address included: a caller that does not pass one cannot use such a key."""
        principal = await self._principal(authorization)
        if principal.networks is not None and not principal.reachable_from(client):
            raise AddressNotAllowed(principal)
        return principal

    async def _principal(self, authorization: str | None) -> Principal:
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
        lookup = asyncio.ensure_future(self._lookup(digest))
        try:
            # Shielded: at the deadline the answer goes out at once; the lookup is cancelled but
            # not waited for, as its clean-up (giving the connection back) may itself wait on a
            # database that does not answer (a frozen server: up to seconds more).
            row = await asyncio.wait_for(asyncio.shield(lookup), self._lookup_s)
        except BaseException as exc:
            if not lookup.done():  # the deadline, or this request cancelled (its client left)
                abandon(lookup)
            # the deadline's TimeoutError is an OSError
            if not isinstance(exc, SQLAlchemyError | OSError) or not is_outage(exc):
                raise
            # The database did not answer (stopped, frozen, out of connections): the key can
            # be neither accepted nor refused, so the request is not served; the type only.
            log.error("key lookup failed: %s", type(exc).__name__)
            raise GatewayError(
                Cause.KEY_STORE_UNAVAILABLE, "The key store is not answering; retry later."
            ) from None
        record = None if row is None else row_to_record(row)
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


class AddressNotAllowed(GatewayError):
    """A valid key used from outside its networks: the 403, and whose key it was (the request's
    audit record names the principal; the caller is told nothing of the key's networks)."""

    def __init__(self, principal: Principal) -> None:
        super().__init__(
            Cause.ADDRESS_NOT_ALLOWED, "This key may not be used from this network address."
        )
        self.principal = principal


def _bearer(value: str | None) -> str | None:
    if not value or len(value) > 256:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token if token.isascii() and token.isprintable() else None


def _budget(microusd: int | None) -> int | None:
    """A budget in micro-dollars as the service takes it (the dollars were checked and
    converted by ``validate_budget``): None or a whole number 0..10^15."""
    if microusd is not None and (type(microusd) is not int or not 0 <= microusd <= 10**15):
        raise ValueError("budget_usd: US dollars per period, from 0 (no budget), or null")
    return microusd
