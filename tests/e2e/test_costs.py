"""What requests cost, from the catalogue's prices and the tokens the backends reported: in each
audit record's usage, summed by the usage report, counted in the metrics. The fake upstream
reports 11 prompt tokens and 7 completion tokens for a whole answer, and one completion token
per streamed piece."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import ValidationError

from gateway.config import Settings
from gateway.config.backends import Price
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

# USD per million tokens: 2.5 in, 10 out -> 11 * 2.5 + 7 * 10 = 97.5 micro-dollars
PRICES = {"gpt-test": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, Path]]:
    tmp = tmp_path_factory.mktemp("costs")
    settings = core_settings(tmp, upstream_server)
    priced = settings.backends[0].model_copy(
        update={"prices": {m: Price.model_validate(p) for m, p in PRICES.items()}}
    )
    settings = settings.model_copy(update={"backends": (priced, *settings.backends[1:])})
    gateway = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    yield gateway, tmp
    gateway.stop()


def test_each_answer_costs_its_tokens_at_the_backends_price_and_the_report_sums_them(
    gw: tuple[RunningGateway, Path], upstream: FakeUpstream
) -> None:
    gateway, tmp = gw
    key = gateway.create_key(user="fin", jurisdiction="AU", sector="private", team="ops")
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    msg = [{"role": "user", "content": "hi"}]
    sdk.chat.completions.create(model="gpt-test", messages=msg)
    upstream.stream_chunks = ["a", "b", "c"]
    list(sdk.chat.completions.create(model="gpt-test", messages=msg, stream=True))
    sdk.embeddings.create(model="emb-test", input="x")  # no price for this model: no cost
    records = [r for r in settled_entries(tmp, "complete") if r["principal"]["user"] == "fin"]
    usage = [r["usage"] for r in records]
    assert usage[0]["cost_microusd"] == round(11 * 2.5 + 7 * 10.0)  # 97.5 -> 98
    assert usage[1]["cost_microusd"] == round(11 * 2.5 + 3 * 10.0)  # 3 pieces, 3 tokens
    assert "cost_microusd" not in usage[2]
    status, _, report = gateway.request(
        "GET", "/admin/audit/usage?by=team,model", token=gateway.ADMIN_TOKEN
    )
    assert status == 200, report
    ops = {g["model"]: g for g in report["groups"] if g["team"] == "ops"}
    assert ops["gpt-test"]["cost_microusd"] == 98 + 58
    assert ops["emb-test"]["cost_microusd"] == 0
    assert report["totals"]["cost_microusd"] >= 156
    _, _, metrics = gateway.request("GET", "/metrics", parse=False)
    line = next(
        ln for ln in metrics.decode().splitlines()
        if ln.startswith('portcullis_cost_usd_total{backend="primary"}')
    )  # fmt: skip
    assert float(line.split()[-1]) == pytest.approx((97.5 + 57.5) / 1e6, rel=0.02)


def test_a_price_for_a_model_the_backend_does_not_serve_is_refused() -> None:
    raw: dict[str, Any] = json.loads(
        json.dumps(
            {"backends": [{"id": "b", "base_url": "http://127.0.0.1:1/v1", "models": ["m"],
                           "operator": "openai", "model_family": "gpt", "model_origin": "US",
                           "hosting_country": "US",
                           "prices": {"other": {"input_per_mtok": 1, "output_per_mtok": 1}}}]}
        )
    )  # fmt: skip
    with pytest.raises(ValidationError, match="not a model of b"):
        Settings.model_validate(raw)
    raw["backends"][0]["prices"] = {"*": {"input_per_mtok": -1, "output_per_mtok": 1}}
    with pytest.raises(ValidationError):
        Settings.model_validate(raw)
