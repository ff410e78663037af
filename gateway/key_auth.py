"""Key authentication, the hot path under :class:`gateway.keys.KeyService`: an ``Authorization``
header to the principal its key stands for, or the one uniform 401.

Anything not shaped like a key is refused before any database work. A key is looked up by its
digest (HMAC-SHA256 under the server secret) through a parameterised query, within
``keys.lookup_deadline_ms``; a database that does not answer in time is a 503
``key_store_unavailable``, the key neither accepted nor refused. A principal found is cached for
``keys.cache_ttl_s`` (never past its key's expiry, and not while revocations from other replicas
cannot be heard); a well-shaped key the database does not know, or one expired, is remembered as
unknown. A key kept to some networks is a 403 ``address_not_allowed`` from any other address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from gateway.errors import Cause, GatewayError
from gateway.key_records import row_to_record
from gateway.key_store import KeyStore
from gateway.principal import Principal
from gateway.storage.db import is_outage
from gateway.storage.schema import api_keys
from gateway.strays import abandon

__all__ = ["AddressNotAllowed", "KeyAuthenticator"]

log = logging.getLogger("portcullis.keys")

UNAUTHENTICATED = "Invalid API key. Provide a valid key as 'Authorization: Bearer <key>'."


class KeyAuthenticator(KeyStore):
    """The key store's authentication of callers (the hot path)."""

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
