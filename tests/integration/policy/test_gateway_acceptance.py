"""The acceptance scenarios through the real gateway, the real policy client and shipped pack,
and the official openai SDK (the fake upstream records what left)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.support.fakes import MemoryAuditSink
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

TIMEOUTS = {"connect_s": 2, "first_byte_s": 2, "idle_s": 1, "total_s": 10}


def _settings(tmp: Path, upstream: FakeUpstream, stance: str) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": str(tmp),
            "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
            "limits": {"requests_per_minute": 100000, "tokens_per_minute": 0},
            "policy": {"self_hosted_stance": stance},
            "backends": [
                {
                    "id": "deepseek-hosted",
                    "base_url": upstream.base_url,
                    "models": ["deepseek-chat"],
                    "operator": "deepseek",
                    "model_family": "deepseek",
                    "model_origin": "CN",
                    "hosting_country": "CN",
                    "timeouts": TIMEOUTS,
                },
                {
                    "id": "deepseek-self",
                    "base_url": upstream.base_url,
                    "models": ["deepseek-local"],
                    "operator": "self",
                    "model_family": "deepseek",
                    "model_origin": "CN",
                    "hosting_country": "AU",
                    "hosting_region": "AU-NSW",
                    "self_hosted": True,
                    "timeouts": TIMEOUTS,
                },
            ],
        }
    )


def _gateway(tmp: Path, upstream: FakeUpstream, stance: str) -> RunningGateway:
    return RunningGateway(
        _settings(tmp, upstream, stance),
        Components(audit=MemoryAuditSink(), pii_disabled=True),  # policy: the real client
    ).start()


@pytest.fixture(scope="module")
def cautious(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    gw = _gateway(tmp_path_factory.mktemp("cautious"), upstream_server, "cautious")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def permit(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    gw = _gateway(tmp_path_factory.mktemp("permit"), upstream_server, "permit")
    yield gw
    gw.stop()


def _ask(gw: RunningGateway, key: str, model: str) -> str | None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    out = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return out.choices[0].message.content


def test_au_government_denied_hosted_with_rule_and_citation(
    cautious: RunningGateway, upstream: FakeUpstream
) -> None:
    key = cautious.create_key(user="gov1", jurisdiction="AU", sector="government")
    with pytest.raises(openai.PermissionDeniedError) as exc:
        _ask(cautious, key, "deepseek-chat")
    assert exc.value.code == "policy_denied"
    body = exc.value.body
    assert isinstance(body, dict)
    hosted = [r for r in body["reasons"] if r["rule"] == "au.au-homeaffairs-2025-02-04.hosted"]
    assert hosted and hosted[0]["citation"]["instrument"] == "PSPF Direction 001-2025"
    assert upstream.received == []


def test_au_government_self_hosted_cautious_denied_permit_served(
    cautious: RunningGateway, permit: RunningGateway, upstream: FakeUpstream
) -> None:
    key = cautious.create_key(user="gov2", jurisdiction="AU", sector="government")
    with pytest.raises(openai.PermissionDeniedError) as exc:
        _ask(cautious, key, "deepseek-local")
    body = exc.value.body
    assert isinstance(body, dict)
    assert any(
        r["rule"].endswith(".weights_cautious") and "cautious default" in r["message"]
        for r in body["reasons"]
    )
    assert upstream.received == []
    key2 = permit.create_key(user="gov2", jurisdiction="AU", sector="government")
    assert _ask(permit, key2, "deepseek-local")
    assert len(upstream.received) == 1


def test_kr_government_hosted_denied_self_hosted_served(
    cautious: RunningGateway, upstream: FakeUpstream
) -> None:
    key = cautious.create_key(user="kr1", jurisdiction="KR", sector="government")
    with pytest.raises(openai.PermissionDeniedError):
        _ask(cautious, key, "deepseek-chat")
    assert upstream.received == []
    assert _ask(cautious, key, "deepseek-local")
    assert len(upstream.received) == 1


def test_models_lists_only_permitted(cautious: RunningGateway) -> None:
    key = cautious.create_key(user="kr2", jurisdiction="KR", sector="government")
    client = openai.OpenAI(base_url=cautious.base_url, api_key=key, max_retries=0)
    assert {m.id for m in client.models.list()} == {"deepseek-local"}
