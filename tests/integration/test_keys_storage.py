"""Keys in real storage (SQLite and PostgreSQL): created once, stored as HMACs, revocable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.errors import GatewayError
from gateway.keys import KeyService
from gateway.secrets_store import ServerSecret
from gateway.storage.db import create_engine_for
from gateway.storage.migrate import upgrade
from gateway.storage.schema import api_keys
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration


@pytest.fixture
async def svc(database_url: str):  # type: ignore[no-untyped-def]
    import asyncio

    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine_for(database_url)
    async with engine.begin() as conn:
        await conn.execute(api_keys.delete())
    yield KeyService(engine, ServerSecret(b"s" * 40), cache_ttl_s=0)
    await engine.dispose()


async def test_key_is_stored_only_as_hmac_and_authenticates(svc: KeyService) -> None:
    issued = await svc.create(
        user="bob", jurisdiction="kr", sector="government", roles=("auditor",)
    )
    assert issued.key.startswith("pcs_") and len(issued.key) == 60
    async with svc._engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_keys))).mappings().all()
    assert len(rows) == 1
    assert issued.key not in repr(dict(rows[0])) and rows[0]["digest"] == svc.digest(issued.key)
    p = await svc.authenticate(f"Bearer {issued.key}")
    assert (p.user, p.jurisdiction, p.sector, p.roles) == ("bob", "KR", "government", ("auditor",))


async def test_a_key_is_shown_masked_by_its_last_four_characters(svc: KeyService) -> None:
    """Listings show ``pcs_<id>_…abcd`` (as OpenAI's ``sk-…abcd``): enough for a holder to tell
    which key a row is, four of the secret's 43 characters and no more; a rotated key's
    successor has its own."""
    issued = await svc.create(user="bob", jurisdiction="AU", sector="private")
    secret = issued.key.split("_", 2)[2]  # pcs_<id>_<secret>: the secret may hold "_"
    want = f"pcs_{issued.key_id}_…{secret[-4:]}"
    (listed,) = await svc.list()
    assert listed.hint == want and listed.to_json()["masked"] == want
    assert secret[:-4] not in want and secret[-5:] not in want
    rotated = await svc.rotate(issued.key_id, grace_s=0)
    assert rotated is not None
    successor = rotated[0]
    new = await svc.get(successor.key_id)
    assert new is not None and new.hint == f"pcs_{successor.key_id}_…{successor.key[-4:]}"


async def test_revoked_key_is_refused(svc: KeyService) -> None:
    issued = await svc.create(user="c", jurisdiction="AU-NSW", sector="private")
    assert await svc.revoke(issued.key_id)
    with pytest.raises(GatewayError) as exc:
        await svc.authenticate(f"Bearer {issued.key}")
    assert exc.value.status == 401
    assert not await svc.revoke(issued.key_id)
    assert [r.key_id for r in await svc.list(include_revoked=True)] == [issued.key_id]
    assert await svc.list() == []


async def test_a_keys_own_limits_are_stored_carried_and_changed(svc: KeyService) -> None:
    issued = await svc.create(
        user="lim", jurisdiction="AU", sector="private", requests_per_minute=60
    )
    p = await svc.authenticate(f"Bearer {issued.key}")
    assert (p.requests_per_minute, p.tokens_per_minute) == (60, None)
    assert "requests_per_minute" not in p.policy_view()  # a limit, not a policy fact
    record = await svc.get(issued.key_id)
    assert record is not None and record.to_json()["requests_per_minute"] == 60
    assert await svc.set_limits(issued.key_id, None, 0)
    p = await svc.authenticate(f"Bearer {issued.key}")
    assert (p.requests_per_minute, p.tokens_per_minute) == (None, 0)
    assert await svc.revoke(issued.key_id)
    assert not await svc.set_limits(issued.key_id, 5, 5)  # a revoked key: nothing to change


async def test_an_expired_key_is_refused_like_an_unknown_one_even_from_a_cache(
    svc: KeyService,
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(seconds=1)
    issued = await svc.create(user="temp", jurisdiction="AU", sector="contractor", expires_at=soon)
    record = await svc.get(issued.key_id)
    assert record is not None and record.expires_at is not None
    assert abs((record.expires_at - soon).total_seconds()) < 0.01 and not record.expired()
    cached = KeyService(svc._engine, ServerSecret(b"s" * 40), cache_ttl_s=300)
    assert (await cached.authenticate(f"Bearer {issued.key}")).user == "temp"  # now cached
    await asyncio.sleep(1.1)
    for service in (cached, svc):
        with pytest.raises(GatewayError) as exc:
            await service.authenticate(f"Bearer {issued.key}")
        assert exc.value.status == 401
    listed = [r.to_json() for r in await svc.list()]
    assert listed[0]["expired"] is True
    assert not await svc.set_limits(issued.key_id, 5, 5)  # nothing to change on an expired key


@pytest.mark.parametrize(
    ("delta", "error"), [(-60, "in the future"), (0, "in the future"), (11 * 366 * 86400, "ten")]
)
async def test_expiry_must_be_ahead_and_within_ten_years(
    svc: KeyService, delta: int, error: str
) -> None:
    from datetime import UTC, datetime, timedelta

    at = datetime.now(UTC) + timedelta(seconds=delta)
    with pytest.raises(ValueError, match=error):
        await svc.create(user="u", jurisdiction="AU", sector="private", expires_at=at)


@pytest.mark.parametrize("value", [-1, 1.5, "60", True, 10**10])
async def test_invalid_limits_are_refused(svc: KeyService, value: object) -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        await svc.create(
            user="u",
            jurisdiction="AU",
            sector="private",
            requests_per_minute=value,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"jurisdiction": "XX"}, "jurisdiction"),
        ({"jurisdiction": "AU-ZZZ"}, "jurisdiction"),
        ({"sector": "pirates"}, "sector"),
        ({"user": ""}, "user"),
        ({"user": "a\x00b"}, "user"),
        ({"roles": ("Admin Role",)}, "role"),
        ({"description": "d" * 501}, "description"),  # PostgreSQL's column would refuse it: a 500
        ({"description": 5}, "description"),
        ({"description": "a\x00b"}, "description"),  # PostgreSQL refuses a NUL: was a 500
        # a trailing newline slipped through the identifier check (``$`` matches before it):
        # "alice\n" is not "alice" to any filter, and it broke `keys list` lines
        ({"user": "alice\n"}, "user"),
        ({"team": "legal\n"}, "team"),
        ({"roles": ("admin\n",)}, "role"),
    ],
)
async def test_invalid_principal_fields_are_refused(
    svc: KeyService, fields: dict, error: str
) -> None:
    base = {"user": "u", "jurisdiction": "AU", "sector": "private"}
    with pytest.raises(ValueError, match=error):
        await svc.create(**{**base, **fields})


async def test_sql_shaped_key_reaches_no_query(svc: KeyService) -> None:
    for bad in ("Bearer x' OR '1'='1", "Bearer " + "pcs_" + "a" * 56, "Bearer pcs_abc"):
        with pytest.raises(GatewayError):
            await svc.authenticate(bad)


async def test_an_unknown_key_costs_one_lookup_however_often_it_is_tried(svc: KeyService) -> None:
    issued = await svc.create(user="eve", jurisdiction="AU", sector="private")
    await svc.revoke(issued.key_id)
    engine, lookups = svc._engine, []

    class Counting:
        def connect(self):  # type: ignore[no-untyped-def]
            lookups.append(1)
            return engine.connect()

    svc._engine = Counting()  # type: ignore[assignment]
    try:
        stranger = "pcs_0123456789ab_" + "A" * 43
        for key in (issued.key, stranger):
            for _ in range(5):
                with pytest.raises(GatewayError) as err:
                    await svc.authenticate(f"Bearer {key}")
                assert err.value.status == 401
    finally:
        svc._engine = engine
    assert len(lookups) == 2  # one per key, not one per attempt


async def test_rotation_issues_a_successor_and_retires_the_old_key(svc: KeyService) -> None:
    from datetime import UTC, datetime, timedelta

    soon = datetime.now(UTC) + timedelta(minutes=10)
    first = await svc.create(
        user="rot", jurisdiction="AU-NSW", sector="government", roles=("auditor",),
        tags=("pilot",), description="d", requests_per_minute=9, expires_at=soon,
    )  # fmt: skip
    done = await svc.rotate(first.key_id, grace_s=86400, actor="tester")
    assert done is not None
    second, old = done
    # grace is capped by the old key's own expiry: a rotation never lengthens its life
    assert old.expires_at is not None and abs((old.expires_at - soon).total_seconds()) < 0.01
    assert old.revoked_at is None
    new = await svc.get(second.key_id)
    assert new is not None and new.rotated_from == first.key_id
    assert new.lineage == first.key_id and new.buckets == first.key_id  # one allowance
    assert new.expires_at is not None and abs((new.expires_at - soon).total_seconds()) < 0.01
    a = await svc.authenticate(f"Bearer {first.key}")
    b = await svc.authenticate(f"Bearer {second.key}")
    assert dataclasses.replace(a, key_id=b.key_id) == b  # the same principal, limits included

    done = await svc.rotate(second.key_id)  # grace 0: revoked at once
    assert done is not None
    third, old = done
    assert old.revoked_at is not None
    with pytest.raises(GatewayError):
        await svc.authenticate(f"Bearer {second.key}")
    assert await svc.rotate(second.key_id) is None  # a retired key has no successor
    assert await svc.rotate("000000000000") is None
    for bad in (-1, 31 * 86400, 1.5, "1h"):
        with pytest.raises(ValueError, match="grace_seconds"):
            await svc.rotate(third.key_id, grace_s=bad)  # type: ignore[arg-type]
    assert [r.key_id for r in await svc.list()] == [first.key_id, third.key_id]
    last = await svc.get(third.key_id)
    assert last is not None and last.buckets == first.key_id  # the chain's first key
    assert (await svc.authenticate(f"Bearer {third.key}")).buckets == first.key_id


async def test_an_active_keys_expiry_can_be_moved_or_removed(svc: KeyService) -> None:
    from datetime import UTC, datetime, timedelta

    issued = await svc.create(user="exp", jurisdiction="AU", sector="private")
    later = datetime.now(UTC) + timedelta(days=30)
    assert await svc.set_expiry(issued.key_id, later)
    record = await svc.get(issued.key_id)
    assert record is not None and record.expires_at is not None
    assert abs((record.expires_at - later).total_seconds()) < 0.01
    assert await svc.set_expiry(issued.key_id, None)
    record = await svc.get(issued.key_id)
    assert record is not None and record.expires_at is None
    with pytest.raises(ValueError, match="in the future"):
        await svc.set_expiry(issued.key_id, datetime.now(UTC) - timedelta(seconds=1))
    assert await svc.revoke(issued.key_id)
    assert not await svc.set_expiry(issued.key_id, later)  # a revoked key stays revoked


async def test_a_keys_model_list_is_stored_carried_and_changed(svc: KeyService) -> None:
    issued = await svc.create(
        user="m", jurisdiction="AU", sector="private", models=["GPT-Test", "fast", "GPT-Test"]
    )
    record = await svc.get(issued.key_id)
    assert record is not None and record.models == ("GPT-Test", "fast")  # once each, as given
    p = await svc.authenticate(f"Bearer {issued.key}")
    assert p.models == frozenset({"gpt-test", "fast"})  # compared case-folded
    assert "models" not in p.policy_view()  # narrows what policy permits; not a policy fact
    assert await svc.set_models(issued.key_id, None)
    assert (await svc.authenticate(f"Bearer {issued.key}")).models is None
    for bad in ([], ["a b"], "gpt", [""], ["x" * 129]):
        with pytest.raises(ValueError, match="models"):
            await svc.set_models(issued.key_id, bad)  # type: ignore[arg-type]
    assert await svc.revoke(issued.key_id)
    assert not await svc.set_models(issued.key_id, ["gpt-test"])


async def test_a_key_kept_to_some_networks_is_refused_from_elsewhere_even_from_the_cache(
    database_url: str,
) -> None:
    """``networks`` stored normalised and carried by rotation; the key authenticates from an
    address inside one of them (IPv4, IPv6, IPv4-mapped IPv6) and nowhere else — an unknown
    address included, and a cached principal too; ``set_networks`` changes it, None lifts it;
    the refusal names the key's principal for the record, never the networks to the caller."""
    import asyncio

    from gateway.keys import AddressNotAllowed

    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine_for(database_url)
    async with engine.begin() as conn:
        await conn.execute(api_keys.delete())
    svc = KeyService(engine, ServerSecret(b"s" * 40), cache_ttl_s=60)
    try:
        issued = await svc.create(
            user="ann", jurisdiction="AU", sector="private",
            networks=["10.20.1.7/16", "2001:db8::/32", "10.20.0.0/16"],
        )  # fmt: skip
        record = await svc.get(issued.key_id)
        assert record is not None and record.networks == ("10.20.0.0/16", "2001:db8::/32")
        assert record.to_json()["networks"] == ["10.20.0.0/16", "2001:db8::/32"]
        bearer = f"Bearer {issued.key}"
        for inside in ("10.20.3.4", "2001:db8::1", "::ffff:10.20.9.9"):
            assert (await svc.authenticate(bearer, inside)).user == "ann"
        for outside in ("10.21.0.1", "127.0.0.1", "2001:db9::1", None, "not an address"):
            with pytest.raises(AddressNotAllowed) as refused:
                await svc.authenticate(bearer, outside)  # the principal is cached by now
            assert refused.value.principal.key_id == issued.key_id
            assert refused.value.status == 403 and "10.20" not in refused.value.message
        assert await svc.set_networks(issued.key_id, ["127.0.0.0/8"])
        assert (await svc.authenticate(bearer, "127.0.0.1")).user == "ann"
        rotated = await svc.rotate(issued.key_id)
        assert rotated is not None
        successor = await svc.get(rotated[0].key_id)
        assert successor is not None and successor.networks == ("127.0.0.0/8",)
        assert await svc.set_networks(rotated[0].key_id, None)
        assert (await svc.authenticate(f"Bearer {rotated[0].key}", None)).user == "ann"
        for bad in ([], ["10.0.0.0/33"], ["nowhere"], "10.0.0.0/8", [7], ["1.2.3.4"] * 51):
            with pytest.raises(ValueError, match="networks"):
                await svc.set_networks(rotated[0].key_id, bad)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def test_migration_0007_gives_keys_rotated_before_it_their_chains_first_key(
    tmp_path: Path,
) -> None:
    """Keys rotated under revision 0006 (A -> B -> C) share A's buckets after the upgrade; a key
    never rotated keeps its own (NULL)."""
    import sqlite3

    db = tmp_path / "keys.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url, "0006")
    with sqlite3.connect(db) as conn:
        for key_id, parent in (("a", None), ("b", "a"), ("c", "b"), ("z", None)):
            conn.execute(
                "INSERT INTO api_keys (key_id, digest, secret_id, user_id, tenant, jurisdiction,"
                " sector, roles, tags, created_at, rotated_from) VALUES (?, ?, 's', 'u', "
                "'default', 'AU', 'private', '[]', '[]', '2026-11-30 00:00:00', ?)",
                (key_id, "d" + key_id, parent),
            )
    upgrade(url)
    with sqlite3.connect(db) as conn:
        got = dict(conn.execute("SELECT key_id, lineage FROM api_keys").fetchall())
    assert got == {"a": None, "b": "a", "c": "a", "z": None}


def test_keys_made_before_migration_0008_have_no_masked_form(tmp_path: Path) -> None:
    """Their secret part was never kept, so none can be shown: ``masked`` is null."""
    import sqlite3

    db = tmp_path / "keys.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url, "0007")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO api_keys (key_id, digest, secret_id, user_id, tenant, jurisdiction,"
            " sector, roles, tags, created_at) VALUES ('a', 'd', 's', 'u', 'default', 'AU',"
            " 'private', '[]', '[]', '2026-11-30 00:00:00')"
        )
    upgrade(url)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT hint FROM api_keys").fetchall() == [(None,)]


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_a_key_store_that_does_not_answer_is_a_503_within_the_lookup_deadline(
    fault: str,
) -> None:
    """A key not cached is looked up in the database; stopped (refused at once) or frozen
    (connections queued, never served), the request is refused with 503
    ``key_store_unavailable`` within ``keys.lookup_deadline_ms``, never a 500 or a hang; and
    served again once the database is back."""
    import asyncio
    import time

    from gateway.errors import Cause
    from tests.support.services import private_postgres

    with private_postgres() as pg:
        await asyncio.to_thread(upgrade, pg.url)
        engine = create_engine_for(pg.url)
        try:
            svc = KeyService(engine, ServerSecret(b"s" * 40), cache_ttl_s=0, lookup_deadline_s=0.3)
            issued = await svc.create(user="f", jurisdiction="AU-NSW", sector="private")
            await engine.dispose()  # the lookup needs a new connection: the postmaster serves it
            if fault == "stopped":
                await asyncio.to_thread(pg.stop)
            else:
                pg.freeze(True)
            t0 = time.perf_counter()
            with pytest.raises(GatewayError) as err:
                await svc.authenticate(f"Bearer {issued.key}")
            took = time.perf_counter() - t0
            assert err.value.cause is Cause.KEY_STORE_UNAVAILABLE and err.value.status == 503
            assert took < 0.3 + 0.5, took
            if fault == "stopped":
                await asyncio.to_thread(pg.start)
            else:
                pg.freeze(False)
            principal = await svc.authenticate(f"Bearer {issued.key}")
            assert principal.user == "f"
        finally:
            await engine.dispose()


def test_invalid_keys_over_http_on_postgresql_get_the_same_401_quickly(
    own_pg: str, tmp_path: Path, upstream: FakeUpstream
) -> None:
    """Reliability A-1 over HTTP with PostgreSQL behind the gateway: every malformed or unknown
    key — SQL-shaped, a ``pg_sleep`` payload in any position, well-shaped ones holding SQL words
    that do reach the (parameterised) lookup — gets the one 401 body, well under 200 ms (the
    median of three; a ``pg_sleep(2)`` that ran would take 2 s), and nothing is forwarded."""
    import http.client
    import json
    import statistics
    import time

    from gateway.http.app import Components
    from tests.e2e.conftest import core_settings
    from tests.e2e.test_bad_input import INVALID_KEYS
    from tests.support.fakes import FakeDecider, MemoryAuditSink
    from tests.support.gateway import RunningGateway

    settings = core_settings(tmp_path, upstream, database={"url": own_pg})
    gw = RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()
    sleepy = [
        "Bearer '; SELECT pg_sleep(2); --",
        "Bearer pcs_000000000000_' || pg_sleep(2) || '",
        "Bearer pcs_000000000000_pg_sleep-2-OR-1-1-" + "A" * 25,  # well-shaped: looked up
        "Bearer pcs_0000pg_sleep_" + "A" * 43,
    ]
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]})
    expected = {
        "error": {
            "message": "Invalid API key. Provide a valid key as 'Authorization: Bearer <key>'.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    try:
        for auth in [a for a in INVALID_KEYS if a is None or "\x00" not in a] + sleepy:
            took = []
            for _ in range(3):
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
                headers = {"Content-Type": "application/json"}
                if auth is not None:
                    headers["Authorization"] = auth
                t0 = time.perf_counter()
                conn.putrequest("POST", "/v1/chat/completions")
                for k, v in headers.items():
                    conn.putheader(k, v.encode("utf-8"))
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body.encode())
                resp = conn.getresponse()
                payload = resp.read()
                took.append(time.perf_counter() - t0)
                conn.close()
                assert resp.status == 401 and json.loads(payload) == expected, (auth, payload)
            assert statistics.median(took) < 0.2, (auth, took)
        assert upstream.received == []
    finally:
        gw.stop()


async def test_a_new_connection_to_a_frozen_database_gives_up_at_its_connect_timeout() -> None:
    """A new connection to a server whose postmaster is frozen (the kernel queues it, nothing
    serves it) fails after ``database.connect_timeout_s`` as an outage (a 503 wherever it is
    asked for: the admin API included), not after asyncpg's 60 s."""
    import time

    from gateway.storage.db import is_outage
    from tests.support.services import private_postgres

    with private_postgres() as pg:
        engine = create_engine_for(pg.url, connect_timeout_s=0.5)
        try:
            pg.freeze(True)
            t0 = time.perf_counter()
            with pytest.raises(Exception) as err:  # its kind is checked below
                async with engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            took = time.perf_counter() - t0
            assert is_outage(err.value), type(err.value)
            assert 0.4 < took < 2.0, took
            pg.freeze(False)
            async with engine.connect() as conn:  # and served once it is back
                assert (await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1
        finally:
            pg.freeze(False)
            await engine.dispose()
