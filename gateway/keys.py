"""API keys: generated with ``secrets``, shown once, stored only as keyed hashes.

A key looks like ``pcs_<12 hex key id>_<43 urlsafe chars>``. The database holds
HMAC-SHA256(server secret, key); lookups are by that digest through a parameterised query.
Anything not shaped like a key is refused before any database work, with the same 401 body
(authentication, the hot path: :mod:`gateway.key_auth`).
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

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import EllipsisType
from typing import Any

from gateway.key_auth import AddressNotAllowed, KeyAuthenticator
from gateway.key_records import (
    KeyRecord,
    validate_budget_period,
    validate_description,
    validate_expiry,
    validate_grace,
    validate_limits,
    validate_models,
    validate_networks,
    validate_principal_fields,
)
from gateway.key_store import KeyNotRecorded, Recorder, joined
from gateway.storage.schema import api_keys

__all__ = ["AddressNotAllowed", "IssuedKey", "KeyNotRecorded", "KeyService", "Recorder"]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once, never stored
    key_id: str


class KeyService(KeyAuthenticator):
    """Keys' lives (create, change, rotate, revoke) and authentication (the hot path,
    :class:`~gateway.key_auth.KeyAuthenticator`)."""

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
        max_parallel: int | None = None,
        budget_period: str | None = None,
    ) -> IssuedKey:
        jurisdiction = validate_principal_fields(
            user, jurisdiction, sector, team, roles, tags, tenant
        )
        validate_limits(requests_per_minute, tokens_per_minute, max_parallel)
        budget_period = validate_budget_period(budget_period)
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
            max_parallel=max_parallel,
            budget_period=budget_period,
        )
        await self._record(
            "create",
            record.principal(),
            actor,
            required=True,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_parallel=max_parallel,
            expires_at=expires_at,
            models=joined(allowed),
            budget_microusd=budget_microusd,
            budget_period=budget_period,
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
        max_parallel: int | EllipsisType | None = ...,
    ) -> bool:
        """Give an active key its own limits (None: back to the configured default; a
        ``max_parallel`` left out keeps its value). Applies at once on this replica; on the
        others at once with Redis, else within ``keys.cache_ttl_s`` (the same news as a
        revocation: forget cached principals)."""
        limits: dict[str, int | None] = {
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
        }
        if max_parallel is not ...:
            limits["max_parallel"] = max_parallel
        validate_limits(requests_per_minute, tokens_per_minute, limits.get("max_parallel"))
        return await self._change(key_id, "limits", actor, limits, effect="use its new limits")

    async def set_budget(
        self,
        key_id: str,
        budget_microusd: int | None,
        actor: str = "system",
        period: str | EllipsisType | None = ...,
    ) -> bool:
        """Give an active key its own spend budget per period, micro-dollars (None: back to
        ``budgets.key_usd``; 0: none), and the period it renews on (None: ``budgets.period``;
        left out: kept). Applies on the replicas as a limit change does; what the key has spent
        is kept (gateway.budgets: it is counted in its own period and the gateway's)."""
        values: dict[str, Any] = {"budget_microusd": _budget(budget_microusd)}
        if period is not ...:
            values["budget_period"] = validate_budget_period(period)
        return await self._change(key_id, "budget", actor, values, effect="use its new budget")

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
        if record is None or not record.active():
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
            max_parallel=old.max_parallel,
            expires_at=old.expires_at,
            models=joined(old.models),
            budget_microusd=old.budget_microusd,
            budget_period=old.budget_period,
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


def _budget(microusd: int | None) -> int | None:
    """A budget in micro-dollars as the service takes it (the dollars were checked and
    converted by ``validate_budget``): None or a whole number 0..10^15."""
    if microusd is not None and (type(microusd) is not int or not 0 <= microusd <= 10**15):
        raise ValueError("budget_usd: US dollars per period, from 0 (no budget), or null")
    return microusd
