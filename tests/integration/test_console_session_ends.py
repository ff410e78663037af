"""The ended console sessions' store (``console_session_ends``) on both databases: a session
ended by itself, by its person, by the provider's session or subject (back-channel logout),
each seen by another replica's store at once; a logout token's ``jti`` taken once across
replicas; rows past their time dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.console_sessions import SessionEnds, provider_ref
from gateway.storage.db import create_engine_for
from gateway.storage.migrate import upgrade
from gateway.storage.schema import console_session_ends

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(upgrade, database_url)
    eng = create_engine_for(database_url)
    async with eng.begin() as conn:
        await conn.execute(console_session_ends.delete())
    yield eng
    await eng.dispose()


async def test_sessions_end_by_provider_session_or_subject_on_every_replica(
    engine: AsyncEngine,
) -> None:
    a, b = SessionEnds(engine, 300), SessionEnds(engine, 300)  # two replicas' stores
    began = int(time.time()) - 5
    op = (provider_ref("sub", "u-1"), provider_ref("sid", "s-1"))
    assert not await b.ended("aa", "liz", began, op)
    await a.end(provider=provider_ref("sid", "s-1"))
    assert await b.ended("aa", "liz", began, op)  # from that provider session
    assert not await b.ended("bb", "liz", began, (provider_ref("sid", "s-2"),))
    assert not await b.ended("cc", "liz", int(time.time()) + 2, op)  # begun after: stays
    await a.end(provider=provider_ref("sub", "u-2"))
    assert await b.ended("dd", "sam", began, (provider_ref("sub", "u-2"),))
    assert not await b.ended("dd", "sam", began)  # a session without provider names
    # what the table keeps: digests, never the provider's identifiers
    async with engine.connect() as conn:
        subjects = [s for (s,) in await conn.execute(sa.select(console_session_ends.c.subject))]
    assert subjects and not any("s-1" in s or "u-2" in s for s in subjects)


async def test_a_logout_token_is_taken_once_across_replicas(engine: AsyncEngine) -> None:
    a, b = SessionEnds(engine, 300), SessionEnds(engine, 300)
    until = datetime.now(UTC) + timedelta(minutes=11)
    assert await a.first_use("jti-1", until)
    assert not await b.first_use("jti-1", until)  # the other replica refuses the replay
    assert not await a.first_use("jti-1", until)
    assert await b.first_use("jti-2", until)
    # a remembered jti past its time is dropped (the token is refused as too old anyway)
    assert await a.first_use("jti-3", datetime.now(UTC) - timedelta(seconds=1))
    assert await b.first_use("jti-3", until)
