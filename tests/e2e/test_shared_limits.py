"""Limits keys share (``limits.user``/``users``, ``limits.teams``, ``limits.tenants``), with the
official SDK against the real gateway. Every key of a team draws on the team's buckets on top of
its own, so the team's third request in a minute is refused whichever key sends it — named as
the team's, not forwarded, counted as ``team_requests`` — while a key of another team is not
held back; the shared in-flight slots and tokens come back when a request ends (or when another
shared limit refuses it); the usage route shows the shared buckets; shadow mode lets their
refusals through and records them; a reload changes them. A person's keys share theirs, so a
second key is no way round them; a tenant's keys share the tenant's."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import FileGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

MSG = [{"role": "user", "content": "hi"}]


def test_a_teams_keys_share_its_limits_on_top_of_their_own(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    fg = FileGateway(
        tmp_path, upstream, limits={"teams": {"ops": {"requests_per_minute": 2, "max_parallel": 1}}}
    )
    gw = fg.gw
    try:
        made = [
            gw.create_key(user=u, jurisdiction="US", sector="private", team=team)
            for u, team in (("ann", "ops"), ("bob", "ops"), ("cy", "legal"))
        ]
        ann, bob, cy = (openai.OpenAI(base_url=gw.base_url, api_key=k, max_retries=0) for k in made)
        assert ann.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        # the answer's rate-limit headers are the tightest bucket's: the team's, none left
        raw = bob.chat.completions.with_raw_response.create(model="deepseek-chat", messages=MSG)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError) as refused:  # the team's third this minute
            ann.chat.completions.create(model="deepseek-chat", messages=MSG)
        err = refused.value
        assert err.code == "rate_limit_exceeded" and "Team ops's limit reached" in err.message
        assert int(err.response.headers["retry-after"]) >= 1
        assert len(upstream.received) == 2  # not forwarded
        assert cy.chat.completions.create(model="deepseek-chat", messages=MSG).choices  # legal
        assert gw.metric("portcullis_limit_refusals_total", 'limit="team_requests"') == 1
        assert gw.metric("portcullis_limit_refusals_total", 'limit="requests"') == 0
        # the usage route shows the team's buckets beside the key's: the team's minute spent,
        # and the refused request's slot given back
        status, _, usage = gw.request(
            "GET", f"/admin/keys/{made[0].split('_')[1]}/usage", token=gw.ADMIN_TOKEN
        )  # fmt: skip
        team = usage["team_limits"]
        assert status == 200 and team["requests_per_minute"] == 2, usage
        assert team["requests_left"] == 0 and team["in_flight"] == 0 and team["max_parallel"] == 1
        assert usage["limits"]["in_flight"] == 0  # the refused request's key slot came back
        cy_usage = gw.request(
            "GET", f"/admin/keys/{made[2].split('_')[1]}/usage", token=gw.ADMIN_TOKEN
        )[2]  # fmt: skip
        assert cy_usage["team_limits"] is None  # legal has no limits of its own
        # shadow mode: the team's refusals are let through and recorded
        fg.raw["limits"]["shadow"] = True
        assert fg.rewrite()["sections"] == ["limits"]
        assert bob.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        assert gw.metric("portcullis_shadow_refusals_total", 'limit="team_requests"') == 1
        last = [e for e in settled_entries(tmp_path, "complete") if e["status"] == 200][-1]
        assert last["shadowed"] == ["team:requests"]
        # the team's limits raised by a reload: admitted again, nothing shadowed
        fg.raw["limits"] = {"teams": {"ops": {"requests_per_minute": 100}}}
        fg.rewrite()
        assert ann.chat.completions.create(model="deepseek-chat", messages=MSG).choices
    finally:
        gw.stop()


def test_a_teams_requests_in_flight_are_held_and_given_back(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    import threading
    import time

    fg = FileGateway(tmp_path, upstream, limits={"teams": {"ops": {"max_parallel": 1}}})
    gw = fg.gw
    try:
        ann, bob = (
            openai.OpenAI(
                base_url=gw.base_url,
                api_key=gw.create_key(user=u, jurisdiction="US", sector="private", team="ops"),
                max_retries=0,
            )
            for u in ("ann", "bob")
        )
        upstream.delay_s = 1.0
        busy = threading.Thread(
            target=lambda: ann.chat.completions.create(model="deepseek-chat", messages=MSG)
        )
        busy.start()
        deadline = time.monotonic() + 5
        while not upstream.received:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as refused:  # bob: the team's one slot taken
            bob.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert refused.value.code == "parallel_limit_exceeded"
        assert "Team ops's limit reached (requests in flight at once)" in refused.value.message
        upstream.delay_s = 0.0
        busy.join(10)
        assert bob.chat.completions.create(model="deepseek-chat", messages=MSG).choices
    finally:
        gw.stop()


def test_a_tenants_keys_share_its_limits_and_a_refusal_gives_back_the_teams_slot(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``limits.tenants``: a tenant's keys share its limits; refused by the tenant's, what the
    request took from its key's and its team's buckets (their slots in flight) is given back."""
    fg = FileGateway(
        tmp_path,
        upstream,
        limits={
            "teams": {"ops": {"max_parallel": 5}},
            "tenants": {"agency": {"requests_per_minute": 1}},
        },
    )
    gw = fg.gw
    try:
        keys = [
            gw.create_key(user=u, jurisdiction="US", sector="private", team="ops", tenant=t)
            for u, t in (("ann", "agency"), ("bob", "agency"), ("cy", "default"))
        ]
        ann, bob, cy = (openai.OpenAI(base_url=gw.base_url, api_key=k, max_retries=0) for k in keys)
        assert ann.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        with pytest.raises(openai.RateLimitError) as refused:
            bob.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert "Tenant agency's limit reached (requests per minute)" in refused.value.message
        assert cy.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        assert gw.metric("portcullis_limit_refusals_total", 'limit="tenant_requests"') == 1
        status, _, usage = gw.request(
            "GET", f"/admin/keys/{keys[1].split('_')[1]}/usage", token=gw.ADMIN_TOKEN
        )  # fmt: skip
        assert status == 200 and usage["tenant_limits"]["requests_left"] == 0, usage
        assert usage["team_limits"]["in_flight"] == 0  # bob's refused request gave its slot back
        assert usage["limits"]["in_flight"] == 0
    finally:
        gw.stop()


def test_a_persons_keys_share_their_limits_so_more_keys_are_no_way_round_them(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``limits.user``: every person's keys share one set of buckets (a second key made for
    oneself does not double one's rate); ``limits.users`` names someone's own."""
    fg = FileGateway(
        tmp_path,
        upstream,
        limits={
            "user": {"requests_per_minute": 1},
            "users": {"batch": {"requests_per_minute": 3}},
        },
    )
    gw = fg.gw
    try:

        def sdk(user: str) -> openai.OpenAI:
            key = gw.create_key(user=user, jurisdiction="US", sector="private")
            return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)

        first, second = sdk("ann"), sdk("ann")  # two keys of one person
        assert first.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        with pytest.raises(openai.RateLimitError) as refused:
            second.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert "ann's limit reached (requests per minute)" in refused.value.message
        assert gw.metric("portcullis_limit_refusals_total", 'limit="user_requests"') == 1
        batch = sdk("batch")  # named: three a minute
        for _ in range(3):
            assert batch.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        with pytest.raises(openai.RateLimitError):
            batch.chat.completions.create(model="deepseek-chat", messages=MSG)
    finally:
        gw.stop()


@pytest.mark.parametrize("redis", [False, True])
def test_a_request_a_shared_limit_refuses_spends_none_of_its_keys_own(
    tmp_path: Path, upstream: FakeUpstream, redis: bool
) -> None:
    """Refused by its team's limit, a request gives back the request it took from its key's
    bucket: the SDK's retries against a spent team do not spend the key's own minute, so once
    the team's limit is raised the key is not held back by refusals it never got an answer
    for (in memory and on the real Redis, whose script gives it back)."""
    import secrets
    import time

    from tests.support.services import REDIS_URL

    team = "ops-" + secrets.token_hex(4)  # the test Redis's buckets outlive a run by minutes
    extra = {"redis": {"url": REDIS_URL}} if redis else {}
    fg = FileGateway(
        tmp_path, upstream, limits={"teams": {team: {"requests_per_minute": 1}}}, **extra
    )
    gw = fg.gw
    try:
        made = gw.create_key(
            user="ann", jurisdiction="US", sector="private", team=team, requests_per_minute=2
        )
        key_id = made.split("_")[1]
        ann = openai.OpenAI(base_url=gw.base_url, api_key=made, max_retries=0)
        assert ann.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        for _ in range(3):  # the team's minute is spent: refused, three times
            with pytest.raises(openai.RateLimitError) as refused:
                ann.chat.completions.create(model="deepseek-chat", messages=MSG)
            assert f"Team {team}'s limit reached" in refused.value.message
        usage = gw.request("GET", f"/admin/keys/{key_id}/usage", token=gw.ADMIN_TOKEN)[2]
        assert usage["limits"]["requests_per_minute"] == 2
        assert usage["limits"]["requests_left"] == 1, usage  # one taken, by the answered one
        fg.raw["limits"] = {"teams": {team: {"requests_per_minute": 100}}}
        fg.rewrite()
        time.sleep(1.0)  # the team's bucket keeps what it held, refilled at its new rate
        # the key's second request of the minute is its own to make
        assert ann.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        with pytest.raises(openai.RateLimitError) as refused:  # and its third is not
            ann.chat.completions.create(model="deepseek-chat", messages=MSG)
        assert "on this key" in refused.value.message
    finally:
        gw.stop()


def test_the_admin_api_says_where_each_shared_limit_stands(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``GET /admin/limits`` (role admin): every shared limit with what its buckets hold now —
    the team's minute being spent by its keys' requests, each person's own — and shadow mode;
    a key without the role is refused."""
    fg = FileGateway(
        tmp_path,
        upstream,
        limits={
            "user": {"requests_per_minute": 5},
            "users": {"batch": {"requests_per_minute": 50}},
            "teams": {"ops": {"requests_per_minute": 4, "max_parallel": 2}},
        },
    )
    gw = fg.gw
    try:
        made = [
            gw.create_key(user=u, jurisdiction="US", sector="private", team="ops")
            for u in ("ann", "batch")
        ]
        for key in made:
            sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
            assert sdk.chat.completions.create(model="deepseek-chat", messages=MSG).choices
        status, _, got = gw.request("GET", "/admin/limits", token=gw.ADMIN_TOKEN)
        assert status == 200, got
        rows = {(r["scope"], r.get(r["scope"])): r for r in got["data"]}
        team = rows[("team", "ops")]
        assert (team["requests_per_minute"], team["max_parallel"]) == (4, 2)
        assert team["standing"]["requests_left"] == 2  # ann's and batch's
        assert team["standing"]["in_flight"] == 0 and team["standing"]["shared"] is False
        assert rows[("user", "ann")]["standing"]["requests_left"] == 4
        assert rows[("user", "ann")]["named"] is False
        assert rows[("user", "batch")]["requests_per_minute"] == 50
        assert rows[("user", "batch")]["named"] is True
        assert got["shadow"] is False and got["key_defaults"]["requests_per_minute"] == 600
        assert got["window"] == "bucket"
        status, _, body = gw.request("GET", "/admin/limits", token=made[0])
        assert status == 403, body
    finally:
        gw.stop()
