"""Spend budgets through the gateway, with the official SDK: a key's own budget and a team's
shared one, counted from the backend's prices and the tokens it reported (97.5 micro-dollars a
whole answer, 57.5 a three-piece stream), refused with a 429 the SDK does not retry once spent,
nothing forwarded, changed through the admin API, shown by ``GET /admin/budgets``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config.backends import Price
from gateway.config.core import BudgetSettings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.e2e

PRICE = {"gpt-test": Price(input_per_mtok=2.5, output_per_mtok=10.0)}
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream, hooks: WebhookReceiver
) -> Iterator[tuple[RunningGateway, Path]]:
    tmp = tmp_path_factory.mktemp("budgets")
    settings = core_settings(tmp, upstream_server)
    priced = tuple(b.model_copy(update={"prices": PRICE}) for b in settings.backends)
    budgets = BudgetSettings.model_validate(
        {"teams": {"ops": 0.0003}, "users": {"uma": 0.0002}, "sync_s": 0.1,
         "webhooks": [{"url": hooks.url}]}
    )  # fmt: skip
    settings = settings.model_copy(update={"backends": priced, "budgets": budgets})
    gateway = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    yield gateway, tmp
    gateway.stop()


def _budgets(gateway: RunningGateway) -> dict[str, Any]:
    status, _, body = gateway.request("GET", "/admin/budgets", token=gateway.ADMIN_TOKEN)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def _row(gateway: RunningGateway, **match: Any) -> dict[str, Any]:
    rows = [r for r in _budgets(gateway)["data"] if match.items() <= r.items()]
    assert len(rows) == 1, rows
    return rows[0]


def _settle(gateway: RunningGateway, spent_usd: float, **match: Any) -> None:
    """Wait until the requests so far are charged (a cost is added once the answer is out)."""
    deadline = time.monotonic() + 5
    while _row(gateway, **match)["spent_usd"] < spent_usd - 1e-9:
        assert time.monotonic() < deadline, _row(gateway, **match)
        time.sleep(0.02)


def _refusals(gateway: RunningGateway, scope: str) -> float:
    return gateway.metric("portcullis_budget_refusals_total", f'scope="{scope}"')


def test_a_keys_budget_admits_while_anything_is_left_then_refuses_without_a_retry(
    gw: tuple[RunningGateway, Path], upstream: FakeUpstream
) -> None:
    gateway, tmp = gw
    key = gateway.create_key(user="kim", jurisdiction="AU", sector="private", budget_usd=0.0002)
    key_id = key.split("_")[1]
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=2)
    for n in (1, 2, 3):  # 98, 196 (< 200: admitted), 294
        raw = sdk.chat.completions.with_raw_response.create(model="gpt-test", messages=MSG)
        _settle(gateway, 98e-6 * n, key_ids=[key_id])
    # each answer says what was left of the tightest budget when it was admitted
    assert raw.headers["x-budget-scope"] == "key"
    assert raw.headers["x-budget-limit-usd"] == "0.000200"
    assert raw.headers["x-budget-remaining-usd"] == "0.000004"  # 200 - 196 micro-dollars
    assert raw.headers["x-budget-renews-at"].endswith("-01T00:00:00Z")
    sent = len(upstream.received)
    refused_before = _refusals(gateway, "key")
    with pytest.raises(openai.RateLimitError) as err:
        sdk.chat.completions.create(model="gpt-test", messages=MSG)
    body = err.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["type"]) == ("spend_budget_exceeded", "insufficient_quota")
    assert body["budget"]["scope"] == "key" and body["budget"]["limit_usd"] == 0.0002
    assert body["budget"]["spent_usd"] == pytest.approx(294e-6)
    assert err.value.response.headers["x-should-retry"] == "false"
    assert int(err.value.response.headers["retry-after"]) > 0
    assert len(upstream.received) == sent  # nothing forwarded
    assert _refusals(gateway, "key") == refused_before + 1  # one request: the SDK did not retry
    with pytest.raises(openai.RateLimitError):  # a stream is refused before it opens
        sdk.chat.completions.create(model="gpt-test", messages=MSG, stream=True)
    assert len(upstream.received) == sent
    refusal = [
        r for r in settled_entries(tmp, "complete")
        if r["principal"]["key_id"] == key_id and r["status"] == 429
    ]  # fmt: skip
    assert [r["error_code"] for r in refusal] == ["spend_budget_exceeded"] * 2  # JSON, stream
    assert not any(r["forwarded"] for r in refusal)
    row = _row(gateway, key_ids=[key_id])
    assert row["limit_usd"] == 0.0002 and row["own"] is True
    assert row["spent_usd"] == pytest.approx(294e-6) and row["remaining_usd"] == 0.0
    # raised through the admin API (recorded as a key change): admitted again
    status, _, record = gateway.request(
        "PATCH", f"/admin/keys/{key_id}", {"budget_usd": 0.001}, token=gateway.ADMIN_TOKEN
    )
    assert status == 200 and record["budget_usd"] == 0.001, record
    sdk.chat.completions.create(model="gpt-test", messages=MSG)
    changes = [
        r["action"] for r in settled_entries(tmp, "key")
        if r["principal"]["key_id"] == key_id and r["action"]["op"] == "budget"
    ]  # fmt: skip
    assert changes == [{"op": "budget", "budget_microusd": 1000}]
    # back to the default (none configured): no budget, and no longer listed
    status, _, record = gateway.request(
        "PATCH", f"/admin/keys/{key_id}", {"budget_usd": None}, token=gateway.ADMIN_TOKEN
    )
    assert status == 200 and record["budget_usd"] is None
    assert not [r for r in _budgets(gateway)["data"] if key_id in r.get("key_ids", [])]
    # a key's own period, through the admin API: checked, set, reported per row, and back
    for bad in ("fortnight", 7, ""):
        status, _, body = gateway.request(
            "PATCH", f"/admin/keys/{key_id}", {"budget_period": bad}, token=gateway.ADMIN_TOKEN
        )
        assert status == 400 and "budget_period" in body["error"]["message"], (bad, body)
    status, _, record = gateway.request(
        "PATCH",
        f"/admin/keys/{key_id}",
        {"budget_usd": 0.5, "budget_period": "day"},
        token=gateway.ADMIN_TOKEN,
    )
    assert status == 200 and (record["budget_usd"], record["budget_period"]) == (0.5, "day")
    row = _row(gateway, key_ids=[key_id])
    assert row["period"] == datetime.now(UTC).strftime("%Y-%m-%d") and row["limit_usd"] == 0.5
    status, _, record = gateway.request(
        "PATCH", f"/admin/keys/{key_id}", {"budget_period": None}, token=gateway.ADMIN_TOKEN
    )
    assert status == 200 and (record["budget_usd"], record["budget_period"]) == (0.5, None)


def test_a_team_shares_its_budget_across_its_keys_json_and_streams(
    gw: tuple[RunningGateway, Path], upstream: FakeUpstream, hooks: WebhookReceiver
) -> None:
    gateway, _ = gw
    ann = gateway.create_key(user="ann", jurisdiction="AU", sector="private", team="ops")
    ben = gateway.create_key(user="ben", jurisdiction="AU", sector="private", team="ops")
    other = gateway.create_key(user="cal", jurisdiction="AU", sector="private", team="dev")
    a, b = (openai.OpenAI(base_url=gateway.base_url, api_key=k, max_retries=2) for k in (ann, ben))
    upstream.stream_chunks = ["x", "y", "z"]
    a.chat.completions.create(model="gpt-test", messages=MSG)  # 98
    _settle(gateway, 98e-6, scope="team", team="ops")
    raw = a.chat.completions.with_raw_response.create(model="gpt-test", messages=MSG, stream=True)
    list(raw.parse())  # +58
    assert raw.headers["x-budget-scope"] == "team"  # the key has no budget of its own
    assert raw.headers["x-budget-remaining-usd"] == "0.000202"
    b.chat.completions.create(model="gpt-test", messages=MSG)  # +98 = 254 < 300
    _settle(gateway, 254e-6, scope="team", team="ops")
    list(b.chat.completions.create(model="gpt-test", messages=MSG, stream=True))  # +58 = 312
    _settle(gateway, 312e-6, scope="team", team="ops")
    for sdk in (a, b):
        with pytest.raises(openai.RateLimitError) as err:
            sdk.chat.completions.create(model="gpt-test", messages=MSG)
        assert "Team ops's spend budget" in err.value.message
        assert err.value.body["budget"]["scope"] == "team"  # type: ignore[index]
    dev = openai.OpenAI(base_url=gateway.base_url, api_key=other, max_retries=0)
    raw = dev.chat.completions.with_raw_response.create(model="gpt-test", messages=MSG)
    assert "x-budget-scope" not in raw.headers  # another team, without a budget
    # the team's 80 % and 100 % were each announced once to the webhook
    deadline = time.monotonic() + 5
    while len([b for b in hooks.bodies() if b.get("team") == "ops"]) < 2:
        assert time.monotonic() < deadline, hooks.bodies()
        time.sleep(0.02)
    ops = [(b["share"], b["spent_usd"]) for b in hooks.bodies() if b.get("team") == "ops"]
    assert ops == [(0.8, 254e-6), (1.0, 312e-6)]
    listing = _budgets(gateway)
    assert listing["period"] == time.strftime("%Y-%m", time.gmtime())
    team = _row(gateway, scope="team", team="ops")
    assert team["limit_usd"] == 0.0003 and team["spent_usd"] == pytest.approx(312e-6)


def test_a_persons_budget_holds_across_their_keys(
    gw: tuple[RunningGateway, Path], upstream: FakeUpstream
) -> None:
    gateway, _ = gw
    keys = [gateway.create_key(user="uma", jurisdiction="AU", sector="private") for _ in (1, 2)]
    laptop, phone = (openai.OpenAI(base_url=gateway.base_url, api_key=k) for k in keys)
    laptop.chat.completions.create(model="gpt-test", messages=MSG)  # 98
    phone.chat.completions.create(model="gpt-test", messages=MSG)  # 196 < 200
    _settle(gateway, 196e-6, scope="user", user="uma")
    laptop.chat.completions.create(model="gpt-test", messages=MSG)  # 294
    _settle(gateway, 294e-6, scope="user", user="uma")
    for sdk in (phone, laptop):
        with pytest.raises(openai.RateLimitError) as err:
            sdk.chat.completions.create(model="gpt-test", messages=MSG)
        assert "uma's spend budget" in err.value.message
    row = _row(gateway, scope="user", user="uma")
    assert row["tenant"] == "default" and row["limit_usd"] == 0.0002


def test_budget_fields_are_checked_before_anything_changes(
    gw: tuple[RunningGateway, Path],
) -> None:
    gateway, _ = gw
    for bad in (-1, "5", True, 10**10):
        status, _, body = gateway.request(
            "POST", "/admin/keys",
            {"user": "x", "jurisdiction": "AU", "sector": "private", "budget_usd": bad},
            token=gateway.ADMIN_TOKEN,
        )  # fmt: skip
        assert status == 400 and "budget_usd" in body["error"]["message"], (bad, body)
    key = gateway.create_key(user="dee", jurisdiction="AU", sector="private")
    key_id = key.split("_")[1]
    status, _, body = gateway.request(
        "PATCH", f"/admin/keys/{key_id}", {"budget_usd": -0.5, "requests_per_minute": 5},
        token=gateway.ADMIN_TOKEN,
    )  # fmt: skip
    assert status == 400 and "budget_usd" in body["error"]["message"]
    _, _, record = gateway.request("GET", f"/admin/keys/{key_id}", token=gateway.ADMIN_TOKEN)
    assert record["requests_per_minute"] is None and record["budget_usd"] is None


def test_a_team_budget_lowered_by_a_reload_bites_at_once_and_the_reload_is_recorded(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    import yaml

    from gateway.config import load_settings
    from tests.e2e.conftest import deepseek_pair

    cfg = tmp_path / "gateway.yaml"
    raw = deepseek_pair(tmp_path, upstream)
    for b in raw["backends"]:
        b["prices"] = {"*": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}
    raw["policy"] = {"self_hosted_stance": "permit"}
    raw["budgets"] = {"teams": {"legal": 1.0}, "sync_s": 0.1}
    cfg.write_text(yaml.safe_dump(raw))
    gw = RunningGateway(load_settings(cfg), reload_from=lambda: load_settings(cfg)).start()
    try:
        key = gw.create_key(user="lee", jurisdiction="US", sector="private", team="legal")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        sdk.chat.completions.create(model="deepseek-chat", messages=MSG)
        _settle(gw, 98e-6, scope="team", team="legal")
        raw["budgets"]["teams"]["legal"] = 0.00005  # below what the team has spent
        cfg.write_text(yaml.safe_dump(raw))
        status, _, body = gw.request("POST", "/admin/config/reload", token=gw.ADMIN_TOKEN)
        assert status == 200 and body["sections"] == ["budgets"], body
        with pytest.raises(openai.RateLimitError) as err:
            sdk.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert err.value.body["budget"]["limit_usd"] == 0.00005  # type: ignore[index]
        assert err.value.body["budget"]["period"] == time.strftime("%Y-%m", time.gmtime())  # type: ignore[index]
        # the team renews daily from now on (its day counted from the change), in the report too
        raw["budgets"]["teams"]["legal"] = {"usd": 0.00005, "period": "day"}
        cfg.write_text(yaml.safe_dump(raw))
        status, _, body = gw.request("POST", "/admin/config/reload", token=gw.ADMIN_TOKEN)
        assert status == 200 and body["sections"] == ["budgets"], body
        status, _, listing = gw.request("GET", "/admin/budgets", token=gw.ADMIN_TOKEN)
        (row,) = [r for r in listing["data"] if r.get("team") == "legal"]
        assert row["period"] == time.strftime("%Y-%m-%d", time.gmtime()), row
        records = [r for r in settled_entries(tmp_path, "config")]
        assert len(records) == 2 and all(r["action"]["budgets"] is True for r in records)
    finally:
        gw.stop()
