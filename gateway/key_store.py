"""The key store under :class:`gateway.keys.KeyService` (and its authentication,
:mod:`gateway.key_auth`): its state (the digest key, the caches, the revocation feed), its reads,
and how a key's change is recorded and announced."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.shapes import is_name
from gateway.key_records import NAME_RULE, KeyRecord, record_to_row, row_to_record
from gateway.principal import Principal
from gateway.secrets_store import ServerSecret
from gateway.storage.schema import api_keys

if TYPE_CHECKING:
    from gateway.revocations import RevocationFeed

__all__ = ["KeyNotRecorded", "KeyStore", "Recorder", "joined", "masked"]

log = logging.getLogger("portcullis.keys")

# (kind, event) -> the entry's sequence number: an audit sink's ``record``.
Recorder = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


class KeyNotRecorded(RuntimeError):
    """The audit trail did not take the key's record, so the key was not created or changed."""


class KeyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        secret: ServerSecret,
        prefix: str = "pcs",
        cache_ttl_s: float = 5.0,
        cache_size: int = 10_000,
        revocations: RevocationFeed | None = None,
        recorder: Recorder | None = None,
        lookup_deadline_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._lookup_s = lookup_deadline_s
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

    @property
    def engine(self) -> AsyncEngine:
        """The database the keys live in (the spend ledger is beside them)."""
        return self._engine

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

    def _row(self, record: KeyRecord, key: str) -> dict[str, Any]:
        """The ``api_keys`` row of a new key: its record, and the key only as its digest."""
        return {
            **record_to_row(record),
            "digest": self.digest(key),
            "secret_id": self._secret.secret_id,
            "hint": masked(self._prefix, record.key_id, key),
        }

    def _new_key(self) -> tuple[str, str]:
        """(key id, key): the id is the key's public part."""
        key_id = secrets.token_hex(6)
        return key_id, f"{self._prefix}_{key_id}_{secrets.token_urlsafe(32)}"

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
                raise ValueError(f"{name}: {NAME_RULE}")
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
            return [row_to_record(r) for r in (await conn.execute(q)).all()]

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))
            ).first()
        return row_to_record(row) if row else None

    async def _record(
        self, op: str, principal: Principal, actor: str, *, required: bool, **action: Any
    ) -> None:
        """Append the ``key`` entry: the principal as requests record it, who, what (``op`` and
        the ``action`` fields: limits, expiry, the key replaced)."""
        if self._recorder is None:
            return
        for name, value in action.items():
            if isinstance(value, datetime):
                action[name] = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "actor": actor,
            "principal": principal.policy_view(),
            "action": {"op": op, **action},
        }
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

    def _remember(self, cache: OrderedDict[str, Any], digest: str, value: Any) -> None:
        """Add to one of the digest caches, dropping its oldest entry beyond ``cache_size``."""
        cache[digest] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def masked(prefix: str, key_id: str, key: str) -> str:
    """A key's display form: its prefix and id, and the secret part's last four characters
    (``pcs_0a1b2c3d4e5f_…Xy9Z``), as OpenAI's console shows ``sk-…abcd``. Four of 43 characters
    leave ~230 bits unguessed, and tell a person which of their keys a listing means. (Built
    from the parts, not by splitting the key: the secret part's alphabet holds ``_``.)"""
    return f"{prefix}_{key_id}_…{key[-4:]}"


def joined(models: tuple[str, ...] | None) -> str | None:
    """A model list for the audit entry's flat ``action`` (names joined by ``+``)."""
    return None if models is None else "+".join(models)
