"""Shadow mode (``limits.shadow``, ``budgets.shadow``), with the official SDK against the real
gateway: what a key's limits or a spent budget would refuse is answered instead, counted in
``portcullis_shadow_refusals_total{limit}`` (not in the refusal counters) and named in the
request's audit record (``shadowed``); a reload turns it off and the same requests are refused."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import FileGateway, deepseek_pair
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

MSG = [{"role": "user", "content": "hi"}]


def test_shadow_mode_answers_what_limits_and_budgets_would_refuse_and_records_it(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    backends = deepseek_pair(tmp_path, upstream)["backends"]
    for b in backends:
        b["prices"] = {"*": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}
    caplog.set_level(logging.WARNING, logger="portcullis")
    fg = FileGateway(
        tmp_path, upstream, backends=backends, limits={"shadow": True},
        budgets={"key_usd": 0.00001, "sync_s": 0.1, "shadow": True},  # spent by one answer
    )  # fmt: skip
    gw = fg.gw
    try:
        # said at start: a trial left on would leave the limits unenforced
        assert "shadow mode (limits.shadow, budgets.shadow)" in caplog.text
        key = gw.create_key(
            user="sam", jurisdiction="US", sector="private", requests_per_minute=1
        )  # fmt: skip
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        for _ in range(3):  # one a minute, and a budget spent by the first: all answered
            assert sdk.chat.completions.create(model="deepseek-chat", messages=MSG).choices
            time.sleep(0.15)  # the first answer's cost reaches the budget's books
        assert gw.metric("portcullis_shadow_refusals_total", 'limit="requests"') == 2
        assert gw.metric("portcullis_shadow_refusals_total", 'limit="budget"') == 2
        assert gw.metric("portcullis_limit_refusals_total", 'limit="requests"') == 0
        assert gw.metric("portcullis_budget_refusals_total", 'scope="key"') == 0
        done = [e for e in settled_entries(tmp_path, "complete") if e["status"] == 200]
        assert [e["shadowed"] for e in done] == [
            [],
            ["budget:key", "requests"],
            ["budget:key", "requests"],
        ]
        assert len(upstream.received) == 3  # each was forwarded
        # the usage report says whom shadow mode let through, and how often
        status, _, usage = gw.request(
            "GET", "/admin/audit/usage?by=user", token=gw.ADMIN_TOKEN
        )  # fmt: skip
        assert status == 200, usage
        (sam,) = [row for row in usage["groups"] if row["user"] == "sam"]
        assert (sam["requests"], sam["shadowed"]) == (3, 2), sam
        assert usage["totals"]["shadowed"] == 2
        # shadow mode off (a reload): the same key is refused now, and counted as refused
        fg.raw["limits"] = {"shadow": False}
        fg.raw["budgets"]["shadow"] = False
        assert set(fg.rewrite()["sections"]) == {"limits", "budgets"}
        with pytest.raises(openai.RateLimitError) as refused:
            sdk.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert refused.value.code == "spend_budget_exceeded"  # the budget is checked first
        assert gw.metric("portcullis_budget_refusals_total", 'scope="key"') == 1
        assert len(upstream.received) == 3
    finally:
        gw.stop()
