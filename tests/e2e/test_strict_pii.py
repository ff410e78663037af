"""Prompts read strictly where policy obliges it (``strict_pii``): the real gateway with the
embedded policy engine and the example overlay ``strict_pii_health`` (healthcare staff), the
real PII guard with its name model at the default settings (windows on, code quiet), the
official SDK, and the fake upstream's record of what it was sent as the evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from gateway.config import load_settings
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PROMPT = "please forward the discharge letter to john smith before friday."


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("strict-pii")
    path = tmp / "config.yaml"
    path.write_text(
        yaml.safe_dump({
            "data_dir": str(tmp),
            "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
            "policy": {
                "overlays": [str(ROOT / "policies/overlays/examples/strict_pii_health")]
            },
            "backends": [{
                "id": "primary", "base_url": upstream_server.base_url, "models": ["gpt-test"],
                "operator": "openai", "model_family": "gpt", "model_origin": "US",
                "hosting_country": "US",
            }],
        })
    )  # fmt: skip
    gw = RunningGateway(load_settings(path)).start()
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
