"""The data-subject search end to end (``POST /admin/audit/subjects``, ``portcullis audit
subject``): the real embedded policy, the real PII guard (patterns, and an identifier of the
organisation's own), the real audit trail on SQLite and on PostgreSQL, requests through the
openai SDK to two real HTTP upstreams (DeepSeek's hosted service in China, the same weights on
the organisation's servers in Sydney). What each upstream received is the evidence the answer is
held to; no value is ever in the trail."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from audit.db import open_engine
from gateway.cli import cli
from gateway.config import Settings
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOKEN = RunningGateway.ADMIN_TOKEN
EMAIL = "grace.hopper@example.org"
TFN = "123 456 782"  # an Australian tax file number with a valid check digit
OTHER_TFN = "876 543 210"  # also valid: someone else's
STAFF_ID = "EMP-004211"  # the organisation's own identifier (pii.custom)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The trail on SQLite, or on the real PostgreSQL in a database of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'trail.db'}"
        return
    from tests.support.services import create_pg_database, drop_pg_database, pg_available

    if not pg_available():
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (make test starts it)")
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def sydney() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def _ask(gw: RunningGateway, key: str, text: str) -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    return sdk.chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": text}]
    )


def _search(gw: RunningGateway, token: str, **body: Any) -> tuple[int, dict[str, Any]]:
    status, _, answer = gw.request("POST", "/admin/audit/subjects", body, token=token)
    return status, answer


def _settled(gw: RunningGateway, outcomes: int) -> None:
    """Wait until the requests' outcome entries are in the trail (written after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        _, _, page = gw.request("GET", "/admin/audit/entries?kind=complete&limit=50", token=TOKEN)
        if len(page["data"]) >= outcomes:
            return
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


async def _raw_rows(url: str) -> list[str]:
    engine = open_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.exec_driver_sql("SELECT body FROM audit_log")).all()
    finally:
        await engine.dispose()
    return [str(r[0]) for r in rows]


def test_a_person_s_data_is_found_with_where_it_went_and_what_was_done_to_it(
    tmp_path: Path, upstream: FakeUpstream, sydney: FakeUpstream, store: str
) -> None:
    raw = deepseek_pair(tmp_path, upstream)
    raw["database"] = {"url": store}
    raw["pii"] = {
        "ner": False,
        "custom": [{"entity": "STAFF_ID", "pattern": r"\bEMP-\d{6}\b"}],
    }
    raw["backends"][1]["base_url"] = sydney.base_url
    (tmp_path / "gateway.yaml").write_text(json.dumps(raw))
    settings = Settings.model_validate(raw)
    gw = RunningGateway(settings).start()
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
        _ask(gw, ann, f"Write to {EMAIL} about TFN {TFN}.")
        # DeepSeek's service fails after taking the request: the gateway sends it on to Sydney
        upstream.mode, upstream.error_status = "error", 503
        _ask(gw, ann, f"Remind {STAFF_ID} that TFN {TFN} is due.")
        upstream.mode = "normal"
        _ask(gw, ann, f"Someone else: TFN {OTHER_TFN}.")
        _ask(gw, ann, "Call me on (02) 9374 4000 tomorrow.")  # written nationally
        # an answer that brings an address the prompt did not hold (personal data the model wrote)
        upstream.reply = "Ask liz.brown@example.net, she knows."
        _ask(gw, ann, "Who knows about the rota?")
        upstream.reply = "Hello from the fake upstream."
        with pytest.raises(openai.PermissionDeniedError):
            _ask(gw, cat, f"TFN {TFN}")  # refused before any inspection: nothing to find
        _settled(gw, 6)
        # what left: DeepSeek's service never saw the number (the policy pseudonymises it there)
        assert all(TFN not in json.dumps(r["json"]) for r in upstream.received)
        assert any(TFN in json.dumps(r["json"]) for r in sydney.received)  # the own servers: as is

        # spelled another way than in the prompts: the same number
        status, found = _search(gw, TOKEN, value="123456782")
        assert status == 200, found
        assert found["totals"] == {"requests": 2, "forwarded": 2, "truncated": False}
        assert found["indexing"] is True and "AU_TFN" in found["types_searched"]
        second, first = found["matches"]  # newest first
        assert {m["user"] for m in found["matches"]} == {"ann"}
        assert first["types"] == second["types"] == ["AU_TFN"]
        assert first["status"] == 200 and first["decision"] == "allow"
        assert [r["id"] for r in first["reached"]] == ["deepseek-hosted"]
        hosted = first["reached"][0]
        assert hosted["operator"] == "deepseek" and hosted["hosting_country"] == "CN"
        assert hosted["answered"] is True and hosted["actions"] == {"AU_TFN": {"pseudonymise": 1}}
        # the second reached both: DeepSeek's service first (it failed after taking the request),
        # then Sydney, which answered; each with what it got of the value
        reached = {r["id"]: r for r in second["reached"]}
        assert set(reached) == {"deepseek-hosted", "deepseek-self"}
        assert reached["deepseek-hosted"]["answered"] is False
        assert reached["deepseek-hosted"]["actions"] == {"AU_TFN": {"pseudonymise": 1}}
        assert reached["deepseek-self"]["answered"] is True
        assert reached["deepseek-self"]["self_hosted"] is True
        assert reached["deepseek-self"]["actions"] == {"AU_TFN": {"allow": 1}}

        # an e-mail address in other capitals, one type asked for; the organisation's own type
        status, found = _search(
            gw, TOKEN, value="Grace.Hopper@EXAMPLE.org", types=["EMAIL_ADDRESS"]
        )
        assert status == 200 and found["totals"]["requests"] == 1, found
        assert found["types_searched"] == ["EMAIL_ADDRESS"]
        status, found = _search(gw, TOKEN, value=STAFF_ID)
        assert status == 200 and [m["types"] for m in found["matches"]] == [["STAFF_ID"]]
        # a value found only in an answer: in_answer says so, and nothing left with the prompt
        status, found = _search(gw, TOKEN, value="Liz.Brown@example.net")
        assert status == 200 and found["totals"]["requests"] == 1, found
        (answered,) = found["matches"]
        assert answered["in_answer"] == ["EMAIL_ADDRESS"] and answered["types"] == []
        assert [r["id"] for r in answered["reached"]] == ["deepseek-hosted"]
        assert answered["reached"][0]["actions"] == {}
        assert all(m["in_answer"] == [] for m in _search(gw, TOKEN, value=TFN)[1]["matches"])
        # a phone number searched in its international form
        status, found = _search(gw, TOKEN, value="+61 2 9374 4000")
        assert status == 200 and [m["types"] for m in found["matches"]] == [["PHONE_NUMBER"]]
        # a value nobody sent; the period before any request
        assert _search(gw, TOKEN, value="987 654 321")[1]["totals"]["requests"] == 0
        assert _search(gw, TOKEN, value=TFN, until="2020-01-01")[1]["totals"]["requests"] == 0

        # an auditor of Korea sees Korea's part: nothing here; staff may not search at all
        kr = gw.create_key(user="kim", jurisdiction="KR", sector="government", roles=["auditor"])
        status, found = _search(gw, kr, value=TFN)
        assert status == 200 and found["totals"]["requests"] == 0
        staff = gw.create_key(user="x", jurisdiction="AU", sector="private")
        assert _search(gw, staff, value=TFN)[0] == 403

        # bad searches: a clear 400 naming the field, never a 500
        for body, param in [
            ({}, "value"),
            ({"value": ""}, "value"),
            ({"value": "x" * 600}, "value"),
            ({"value": TFN, "types": ["NOT_A_TYPE"]}, "types"),
            ({"value": TFN, "types": [TFN]}, "types"),  # the value in the wrong field
            ({"value": TFN, "types": "AU_TFN"}, "types"),
            ({"value": TFN, "since": "yesterday"}, "since"),
            ({"value": TFN, "colour": "red"}, None),
        ]:
            status, err = _search(gw, TOKEN, **body)
            assert status == 400, (body, err)
            assert TFN not in err["error"]["message"]  # an error never echoes the value
            assert param is None or err["error"]["param"] == param, (body, err)
        assert gw.request("GET", "/admin/audit/subjects", token=TOKEN)[0] == 405

        # the command line: the value on standard input, never an argument
        cfg = str(tmp_path / "gateway.yaml")
        done = CliRunner().invoke(
            cli, ["-c", cfg, "audit", "subject", "--json", "--actor", "jane.doe"], input=TFN + "\n"
        )
        assert done.exit_code == 0, done.output
        said = json.loads(done.output)
        assert [m["request_id"] for m in said["matches"]] == [
            m["request_id"] for m in _search(gw, TOKEN, value=TFN)[1]["matches"]
        ]
        table = CliRunner().invoke(cli, ["-c", cfg, "audit", "subject", "--type", "AU_TFN"],
                                   input=TFN)  # fmt: skip
        assert table.exit_code == 0, table.output
        assert table.output.startswith("2 request(s) held the value, 2 of them sent")
        assert "deepseek-self (self, AU, self-hosted): AU_TFN allow" in table.output
        assert "deepseek-hosted (deepseek, CN, failed after sending): AU_TFN pseudonymise" in (
            table.output
        )
        wrong = CliRunner().invoke(
            cli, ["-c", cfg, "audit", "subject", "--type", "NOPE"], input=TFN
        )
        assert wrong.exit_code == 2 and "not a type the gateway finds" in wrong.output
    finally:
        gw.stop()

    # every search is on the record, with the types searched and the reader, never the value
    bodies = asyncio.run(_raw_rows(store))
    for secret in (TFN, "123456782", EMAIL, "grace.hopper", STAFF_ID, OTHER_TFN, "liz.brown"):
        assert not any(secret.casefold() in b.casefold() for b in bodies), secret
    searches = [
        json.loads(b)
        for b in bodies
        if '"phase":"subject"' in b.replace(" ", "") and json.loads(b).get("kind") != "intent"
    ]
    assert {s["actor"] for s in searches} >= {"admin-token", "jane.doe"}
    assert any(s["action"]["types"] == "EMAIL_ADDRESS" for s in searches)
    assert any(s["action"]["types"] == "many" and s["action"]["type_count"] > 30 for s in searches)


def test_with_the_index_off_no_digest_is_kept_and_the_search_says_so(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    raw = deepseek_pair(tmp_path, upstream)
    raw["pii"] = {"ner": False}
    raw["audit"] = {"record_subject_digests": False}
    gw = RunningGateway(Settings.model_validate(raw)).start()
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        _ask(gw, ann, f"TFN {TFN}")
        _settled(gw, 1)
        status, found = _search(gw, TOKEN, value=TFN)
        assert status == 200 and found["indexing"] is False
        assert found["totals"]["requests"] == 0
        _, _, page = gw.request("GET", "/admin/audit/entries?kind=complete", token=TOKEN)
        (entry,) = page["data"]
        pii = entry["entry"]["pii"]
        assert pii["counts"] == {"AU_TFN": 1} and pii["subjects"] == []
    finally:
        gw.stop()
