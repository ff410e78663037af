"""A backend whose configured credential is missing gets no request: it could only refuse it,
after the prompt had left."""

from __future__ import annotations

import logging
import time

import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

MISSING = "PCS_TEST_CREDENTIAL_THAT_IS_NOT_SET"


def test_backend_without_its_credential_is_skipped_and_named_in_the_log(
    tmp_path,
    upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(MISSING, raising=False)
    settings = core_settings(tmp_path, upstream)
    primary = settings.backends[0].model_copy(
        update={"credential": settings.backends[0].credential.model_copy(update={"env": MISSING})}
    )
    settings = settings.model_copy(update={"backends": (primary, *settings.backends[1:])})
    audit = MemoryAuditSink()
    with caplog.at_level(logging.WARNING, logger="portcullis"):
        gw = RunningGateway(
            settings, Components(policy=FakeDecider(), audit=audit, pii_disabled=True)
        ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
        deadline = time.monotonic() + 3
        while not audit.completions and time.monotonic() < deadline:
            time.sleep(0.02)
        assert audit.completions[-1]["backend"]["id"] == "secondary"  # primary comes first
        assert len(upstream.received) == 1
        # emb-test is served by the primary alone: not listed, and refused without forwarding
        assert "emb-test" not in {m.id for m in sdk.models.list()}
        with pytest.raises(openai.InternalServerError) as exc:
            sdk.embeddings.create(model="emb-test", input="x")
        assert exc.value.status_code == 503 and len(upstream.received) == 1
    finally:
        gw.stop()
    assert any("primary" in r.getMessage() and MISSING in r.getMessage() for r in caplog.records)
