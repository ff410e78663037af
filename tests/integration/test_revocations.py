"""A key revoked on one replica (or with the CLI) is refused by the others at once, through the
real Redis; a replica that cannot hear revocations does not trust its cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gateway.errors import GatewayError
from gateway.keys import KeyService
from gateway.revocations import RedisRevocations
from gateway.secrets_store import ServerSecret
from gateway.storage.db import create_engine_for
from gateway.storage.migrate import upgrade
from gateway.storage.schema import api_keys
from tests.support.services import REDIS_URL

pytestmark = pytest.mark.integration

SECRET = ServerSecret(b"r" * 40)
LONG_TTL = 300.0  # far longer than any test: only the feed can make a replica forget


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture
async def replicas(db_url: str) -> AsyncIterator[Callable[..., KeyService]]:
    """Makes KeyServices over the same database, each with its own engine (own replica)."""
    made: list[tuple[KeyService, object]] = []

    def make(feed: RedisRevocations | None = None) -> KeyService:
        engine = create_engine_for(db_url)
        svc = KeyService(engine, SECRET, cache_ttl_s=LONG_TTL, revocations=feed)
        made.append((svc, engine))
        return svc

    yield make
    for svc, engine in made:
        await svc.close()
        await engine.dispose()  # type: ignore[attr-defined]


async def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def _refused(svc: KeyService, key: str, timeout: float = 3.0) -> float:
    """Seconds until ``svc`` refuses ``key``."""
    t0 = time.monotonic()
    while True:
        try:
            await svc.authenticate(f"Bearer {key}")
        except GatewayError as exc:
            assert exc.status == 401
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("the revoked key is still accepted")
        await asyncio.sleep(0.01)


async def _revoke_behind_its_back(svc: KeyService, key_id: str) -> None:
    """Revoke in the database only, as another replica with no feed would."""
    async with svc._engine.begin() as conn:
        await conn.execute(
            sa.update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=sa.func.now())
        )


async def test_revocation_on_one_replica_reaches_the_other_at_once(replicas) -> None:  # type: ignore[no-untyped-def]
    a = replicas(RedisRevocations(REDIS_URL))
    b = replicas(RedisRevocations(REDIS_URL))
    await a.start()
    await b.start()
    await _until(lambda: a._feed.live and b._feed.live)  # type: ignore[union-attr]
    issued = await a.create(user="u1", jurisdiction="AU", sector="government")
    await b.authenticate(f"Bearer {issued.key}")  # cached on b, for LONG_TTL
    assert await a.revoke(issued.key_id)
    assert await _refused(b, issued.key) < 1.0


async def test_without_the_feed_the_other_replica_keeps_its_cache(replicas) -> None:  # type: ignore[no-untyped-def]
    # The control for the test above: the same steps with no Redis leave b accepting the key
    # for its cache's lifetime (what the feed exists to prevent).
    a, b = replicas(), replicas()
    issued = await a.create(user="u2", jurisdiction="AU", sector="government")
    await b.authenticate(f"Bearer {issued.key}")
    assert await a.revoke(issued.key_id)
    await asyncio.sleep(0.3)
    assert (await b.authenticate(f"Bearer {issued.key}")).user == "u2"


async def test_cli_revocation_reaches_a_running_replica(
    replicas, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from gateway.cli import cli

    b = replicas(RedisRevocations(REDIS_URL))
    await b.start()
    await _until(lambda: b._feed.live)  # type: ignore[union-attr]
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(tmp_path),
                "database": {"url": db_url},
                "redis": {"url": REDIS_URL},
                "keys": {"secret_env": "PCS_TEST_KEY_SECRET"},
            }
        )
    )
    monkeypatch.setenv("PCS_TEST_KEY_SECRET", (b"r" * 40).decode())
    issued = await b.create(user="u3", jurisdiction="AU", sector="government")
    await b.authenticate(f"Bearer {issued.key}")
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["-c", str(cfg), "keys", "revoke", issued.key_id]
    )
    assert result.exit_code == 0, result.output
    assert await _refused(b, issued.key) < 1.0


async def test_a_replica_that_cannot_hear_revocations_does_not_trust_its_cache(replicas) -> None:  # type: ignore[no-untyped-def]
    feed = RedisRevocations("redis://127.0.0.1:1/0", connect_timeout_s=0.2, retry_s=0.2)
    b = replicas(feed)
    await b.start()
    await asyncio.sleep(0.3)
    assert not feed.live
    issued = await b.create(user="u4", jurisdiction="AU", sector="government")
    await b.authenticate(f"Bearer {issued.key}")
    await _revoke_behind_its_back(b, issued.key_id)
    with pytest.raises(GatewayError):
        await b.authenticate(f"Bearer {issued.key}")


async def test_resubscribing_clears_what_was_cached_while_deaf(replicas) -> None:  # type: ignore[no-untyped-def]
    # A revocation published while a replica was disconnected never reaches it; on
    # resubscribing it forgets every cached principal instead.
    feed = RedisRevocations(REDIS_URL, retry_s=0.05)
    b = replicas(feed)
    await b.start()
    await _until(lambda: feed.live)
    issued = await b.create(user="u5", jurisdiction="AU", sector="government")
    await b.authenticate(f"Bearer {issued.key}")
    await _revoke_behind_its_back(b, issued.key_id)  # no message: as if published while deaf
    assert (await b.authenticate(f"Bearer {issued.key}")).user == "u5"  # still cached
    # Drop the feed's connection on the server side, as a Redis restart would.
    import redis.asyncio as aioredis

    before = b._generation
    admin = aioredis.from_url(REDIS_URL)
    try:
        clients = await admin.client_list(_type="pubsub")
        assert clients, "the feed is not subscribed"
        for c in clients:
            await admin.client_kill_filter(_id=c["id"])
    finally:
        await admin.aclose()
    # Back and listening, with the cache trusted again: the refusal comes from a cache that
    # resubscribing emptied, not from the bypass while the feed was down.
    await _until(lambda: feed.live and b._generation > before)
    with pytest.raises(GatewayError):
        await b.authenticate(f"Bearer {issued.key}")


class _LiveFeed:
    """A feed that is always live and publishes nothing (for the race below)."""

    live = True

    async def start(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change

    async def publish(self, key_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_a_row_read_before_a_revocation_arrived_is_not_cached(replicas) -> None:  # type: ignore[no-untyped-def]
    feed = _LiveFeed()
    b = replicas(feed)
    await b.start()
    issued = await b.create(user="u6", jurisdiction="AU", sector="government")
    engine = b._engine

    class HearsRevocationOnConnect:
        def connect(self):  # type: ignore[no-untyped-def]
            feed.on_change()  # the news comes while this lookup is under way
            return engine.connect()

    b._engine = HearsRevocationOnConnect()  # type: ignore[assignment]
    await b.authenticate(f"Bearer {issued.key}")  # the row as read: still active
    b._engine = engine
    await _revoke_behind_its_back(b, issued.key_id)
    with pytest.raises(GatewayError):  # that row was not cached
        await b.authenticate(f"Bearer {issued.key}")
