"""Prompts read strictly where policy obliges it (``strict_pii``): the real gateway with the
embedded policy engine and the example overlay ``strict_pii_health`` (healthcare staff), the
real PII guard with its name model at the default settings (windows on, code quiet), the
official SDK, and the fake upstream's record of what it was sent as the evidence."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.e2e.conftest import overlay_gateway
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
PROMPT = "please forward the discharge letter to john smith before friday."


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    gw = overlay_gateway(
        tmp_path_factory.mktemp("strict-pii"), upstream_server, "strict_pii_health"
    )
    yield gw
    gw.stop()


def _sent(gw: RunningGateway, upstream: FakeUpstream, sector: str) -> str:
    key = gw.create_key(user=f"{sector}-user", jurisdiction="GB", sector=sector)
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    before = len(upstream.received)
    sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": PROMPT}])
    (body,) = upstream.received[before:]
    return str(body["json"]["messages"][-1]["content"])


def test_a_health_provider_s_lower_case_name_is_found_and_others_read_as_configured(
    gateway: RunningGateway, upstream: FakeUpstream
) -> None:
    strict = _sent(gateway, upstream, "healthcare")
    assert "john smith" not in strict and "<PERSON_" in strict, strict
    loose = _sent(gateway, upstream, "private")  # windows on: the lower-case name unseen
    assert loose == PROMPT
