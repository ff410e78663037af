"""The token budget is charged for streams whose backend reports no usage (the client did not
ask for ``include_usage``): they were refunded in full, so streaming bypassed the budget."""

from __future__ import annotations

import openai
import pytest

from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def test_streams_without_usage_are_charged_their_estimate(tmp_path, upstream: FakeUpstream) -> None:  # type: ignore[no-untyped-def]
    settings = core_settings(tmp_path, upstream)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"tokens_per_minute": 1000})}
    )
    gw = RunningGateway(
        settings, Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True)
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        served = 0
        with pytest.raises(openai.RateLimitError) as exc:
            for _ in range(20):  # each reserves ~300 tokens (max_tokens 300 + the prompt)
                list(
                    sdk.chat.completions.create(
                        model="gpt-test",
                        messages=[{"role": "user", "content": "x"}],
                        max_tokens=300,
                        stream=True,
                    )
                )
                served += 1
        assert exc.value.code == "token_budget_exceeded"
        assert 2 <= served <= 4
    finally:
        gw.stop()
