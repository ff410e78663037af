"""Two gateway replicas on one database and one Redis: a key revoked through one replica's admin
API is refused by the other at once, although the other had it cached."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.services import REDIS_URL
from tests.support.upstream import FakeUpstream


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    tmp = tmp_path_factory.mktemp("replicas")  # one data_dir: one database, one server secret
    settings = core_settings(
        tmp, upstream_server, redis={"url": REDIS_URL}, keys={"cache_ttl_s": 300}
    )
    a, b = (
        RunningGateway(
            settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
        ).start()
        for _ in range(2)
    )
    yield a, b
    a.stop()
    b.stop()


def test_key_revoked_on_one_replica_is_refused_by_the_other_at_once(
    pair: tuple[RunningGateway, RunningGateway], upstream: FakeUpstream
) -> None:
    a, b = pair
    key = a.create_key(user="carol", jurisdiction="US", sector="private")
    key_id = key.split("_")[1]
    on_b = openai.OpenAI(base_url=b.base_url, api_key=key, max_retries=0)
    # b looks the key up and caches its principal for keys.cache_ttl_s (300 s)
    assert on_b.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    ).choices
    status, _, _ = a.request("DELETE", f"/admin/keys/{key_id}", token=a.ADMIN_TOKEN)
    assert status in (200, 204)
    t0 = time.monotonic()
    while True:
        status, _, _ = b.request("GET", "/v1/models", token=key)
        if status == 401:
            break
        assert time.monotonic() - t0 < 1.0, "the other replica still accepts the revoked key"
        time.sleep(0.01)
    forwarded = len(upstream.received)
    with pytest.raises(openai.AuthenticationError):
        on_b.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert len(upstream.received) == forwarded  # nothing left for the revoked key
