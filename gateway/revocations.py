"""Key revocations reaching every replica at once: a Redis channel the replicas listen on.

A replica caches the principal of a key it has looked up (``keys.cache_ttl_s``). Without a
shared channel, a key revoked through another replica or the CLI stays usable here until that
entry expires. With ``redis.url`` set, whoever revokes a key publishes its id on
:data:`CHANNEL` after the database commit, and every replica's :class:`RedisRevocations` drops
its cached principals when the message arrives (milliseconds).

A replica that is not subscribed cannot hear revocations, so it must not trust its cache: while
the feed is down (Redis unreachable, not yet subscribed, reconnecting), :attr:`live` is false and
:class:`gateway.keys.KeyService` looks every key up in the database. On every (re)subscription
the cache is cleared too, since messages published meanwhile were missed.

Without Redis (one replica, embedded defaults) there is no feed: a revocation through this
process's admin API takes effect at once; one through the CLI (another process) within
``keys.cache_ttl_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from gateway.strays import stop

__all__ = ["CHANNEL", "RedisRevocations", "RevocationFeed"]

log = logging.getLogger("portcullis.keys")

CHANNEL = "portcullis:key-revocations"


class RevocationFeed(Protocol):
    live: bool

    async def start(self, on_change: Callable[[], None]) -> None: ...

    async def publish(self, key_id: str) -> None: ...

    async def close(self) -> None: ...


class RedisRevocations:
    """Subscribes to :data:`CHANNEL`; calls ``on_change`` on each revocation and each
    (re)subscription. ``live`` is true only while subscribed."""

    def __init__(self, url: str, *, connect_timeout_s: float = 1.0, retry_s: float = 1.0) -> None:
        import redis.asyncio as aioredis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent reconnects inside redis-py: a dropped connection must reach _listen, which
        # marks the feed down and clears the cache when it is back (messages were missed).
        self._redis: Any = aioredis.from_url(
            url,
            socket_connect_timeout=connect_timeout_s,
            health_check_interval=5,
            retry=Retry(NoBackoff(), 0),
        )
        self._retry = retry_s
        self._task: asyncio.Task[None] | None = None
        self._on_change: Callable[[], None] = lambda: None
        self.live = False

    async def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._task = asyncio.create_task(self._listen(), name="key-revocations")

    async def publish(self, key_id: str) -> None:
        """Tell every replica that ``key_id`` was revoked (after the database has it)."""
        await self._redis.publish(CHANNEL, key_id)

    async def _listen(self) -> None:
        down_logged = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:  # get_message, not listen(): it sends the periodic health check
                    message = await pubsub.get_message(timeout=1.0)
                    kind = message.get("type") if message is not None else None
                    if kind == "subscribe":  # the server confirmed: from now on we hear them
                        self.live = True
                        self._on_change()  # what was published while we were deaf is missed
                        if down_logged:
                            log.warning("key revocation feed restored; cached principals cleared")
                            down_logged = False
                    elif kind == "message":
                        self._on_change()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: not live, retry
                if not down_logged:
                    log.warning(
                        "key revocation feed down (%s): keys are looked up in the database on "
                        "every request until it is back",
                        type(exc).__name__,
                    )
                    down_logged = True
            finally:
                self.live = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(self._retry)

    async def close(self) -> None:
        await stop(self._task)
        self._task = None
        self.live = False
        await self._redis.aclose()
