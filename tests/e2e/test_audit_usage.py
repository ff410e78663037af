"""Usage from the audit trail (``GET /admin/audit/usage``, ``portcullis audit usage``): the
real embedded policy and the real SQLite audit trail, requests through the openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOKEN = RunningGateway.ADMIN_TOKEN


@pytest.fixture
def traffic(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[RunningGateway, Path]]:
    """Three requests of team ops (AU-NSW, private; one the backend fails), one of team gov
    (AU, government: denied by the PSPF direction), then the gateway for the reports."""
    settings = Settings.model_validate(deepseek_pair(tmp_path, upstream))
    gw = RunningGateway(settings, Components(pii_disabled=True)).start()
    ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
    cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")

    def ask(key: str) -> Any:
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        return sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
        )

    ask(ann)
    ask(ann)
    upstream.mode, upstream.error_status = "error", 500
    with pytest.raises(openai.InternalServerError):
        ask(ann)
    upstream.mode = "normal"
    with pytest.raises(openai.PermissionDeniedError):
        ask(cat)
    yield gw, tmp_path
    gw.stop()


def _usage(gw: RunningGateway, query: str, token: str = TOKEN) -> tuple[int, Any]:
    status, _, body = gw.request("GET", f"/admin/audit/usage?{query}", token=token)
    return status, body


def _wait_outcomes(gw: RunningGateway, n: int) -> None:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if _usage(gw, "by=")[1]["totals"]["requests"] >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the outcome entries did not land")


def test_usage_per_team_and_model_counts_requests_outcomes_and_tokens(
    traffic: tuple[RunningGateway, Path],
) -> None:
    gw, _ = traffic
    _wait_outcomes(gw, 4)
    status, body = _usage(gw, "by=team,model")
    assert status == 200, body
    rows = {(g["team"], g["model"]): g for g in body["groups"]}
    ops, gov = rows[("ops", "deepseek-chat")], rows[("gov", "deepseek-chat")]
    assert (ops["requests"], ops["denied"], ops["failed"], ops["forwarded"]) == (3, 0, 1, 3)
    assert (ops["prompt_tokens"], ops["completion_tokens"], ops["total_tokens"]) == (22, 14, 36)
    assert (gov["requests"], gov["denied"], gov["forwarded"], gov["total_tokens"]) == (1, 1, 0, 0)
    assert body["totals"]["requests"] == 4 and body["totals"]["total_tokens"] == 36
    assert body["groups"][0]["team"] == "ops"  # most requests first

    status, body = _usage(gw, "by=jurisdiction,decision,day&decision=deny")
    assert status == 200
    ((only,),) = [body["groups"]]
    assert (only["jurisdiction"], only["decision"], only["requests"]) == ("AU", "deny", 1)
    assert len(only["day"]) == 10

    # which key spent what: the principal's key id
    ids = {k["user"]: k["key_id"] for k in gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"]}
    status, body = _usage(gw, "by=key")
    assert status == 200, body
    assert {g["key"]: g["requests"] for g in body["groups"]} == {ids["ann"]: 3, ids["cat"]: 1}

    # refused before any query: an unknown grouping or filter
    for query, param in (("by=colour", "by"), ("by=team,team", "by"), ("since=yesterday", "since")):
        status, body = _usage(gw, query)
        assert status == 400 and body["error"]["param"] == param, (query, body)
    status, body = _usage(gw, "rule=x")
    assert status == 400


def test_an_auditor_sees_the_usage_of_its_own_jurisdictions_and_the_read_is_recorded(
    traffic: tuple[RunningGateway, Path],
) -> None:
    gw, data_dir = traffic
    _wait_outcomes(gw, 4)
    kr = gw.create_key(user="kr-aud", jurisdiction="KR", sector="government", roles=["auditor"])
    nsw = gw.create_key(user="nsw-aud", jurisdiction="AU-NSW", sector="government",
                        roles=["auditor"])  # fmt: skip
    assert _usage(gw, "by=team", kr)[1]["groups"] == []
    status, body = _usage(gw, "by=team", nsw)
    assert status == 200 and [g["team"] for g in body["groups"]] == ["ops"]
    staff = gw.create_key(user="x", jurisdiction="AU", sector="private")
    assert _usage(gw, "by=team", staff)[0] == 403

    import sqlite3

    with sqlite3.connect(data_dir / "portcullis.db") as db:
        reads = [json.loads(b) for (b,) in db.execute(
            "SELECT body FROM audit_log WHERE kind = 'export' ORDER BY seq")]  # fmt: skip
    usage_reads = [r for r in reads if r["action"].get("phase") == "usage"]
    # each read on the record, by whom; the refused one (no role) is not a read
    assert [r["actor"] for r in usage_reads[-2:]] == [kr.split("_")[1], nsw.split("_")[1]]
    last = usage_reads[-1]["action"]
    assert (last["by"], last["scope"]) == ("team", "AU-NSW")


def test_the_command_line_reports_the_same_usage(traffic: tuple[RunningGateway, Path]) -> None:
    gw, data_dir = traffic
    _wait_outcomes(gw, 4)
    cfg = data_dir / "cli.yaml"
    cfg.write_text(f"data_dir: {data_dir}\n")
    runner = CliRunner()
    done = runner.invoke(
        cli, ["-c", str(cfg), "audit", "usage", "--by", "user", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    users = {g["user"]: g for g in report["groups"]}
    assert users["ann"]["total_tokens"] == 36 and users["cat"]["denied"] == 1
    table = runner.invoke(cli, ["-c", str(cfg), "audit", "usage", "--by", "team"]).output
    lines = [line.split("\t") for line in table.strip().splitlines()]
    assert lines[0][:3] == ["team", "requests", "denied"]
    assert lines[-1][:2] == ["total", "4"]
    csv_out = runner.invoke(
        cli, ["-c", str(cfg), "audit", "usage", "--by", "team", "--format", "csv"]
    ).output
    assert csv_out.splitlines()[0].startswith('"team","requests"')
    bad = runner.invoke(cli, ["-c", str(cfg), "audit", "usage", "--by", "colour"])
    assert bad.exit_code != 0 and "by" in bad.output


def test_the_denials_report_names_the_rule_its_citation_and_who_asked(
    traffic: tuple[RunningGateway, Path],
) -> None:
    """cat (Australian government staff) was refused the hosted DeepSeek service: the report
    names the rule, the government action behind it as the shipped policy data has it, one
    person, and the command line reads the same."""
    gw, data_dir = traffic
    _wait_outcomes(gw, 4)
    status, _, body = gw.request("GET", "/admin/audit/denials", token=TOKEN)
    assert status == 200, body
    body_first = body
    # both of Australia's rules refused it (the hosted service, and the weights while the
    # operator has not permitted them): one request under each rule, once in the totals
    rules = {g["rule"]: g for g in body["groups"]}
    assert set(rules) == {
        "au.au-homeaffairs-2025-02-04.hosted",
        "au.au-homeaffairs-2025-02-04.weights_cautious",
    }
    row = rules["au.au-homeaffairs-2025-02-04.hosted"]
    assert row["jurisdiction"] == "AU"
    assert (row["requests"], row["people"]) == (1, 1) and row["first"] == row["last"]
    assert row["citations"] == [
        {
            "id": "au-homeaffairs-2025-02-04",
            "authority": "Secretary of the Department of Home Affairs",
            "instrument": "PSPF Direction 001-2025",
            "effective_date": "2025-02-04",
            "status": "in_force",
            "url": row["citations"][0]["url"],
        }
    ]
    assert body["totals"]["requests"] == 1 and body["totals"]["people"] == 1
    # without the rule: each request once, per team
    status, _, body = gw.request("GET", "/admin/audit/denials?by=team,sector", token=TOKEN)
    assert status == 200 and [(g["team"], g["sector"]) for g in body["groups"]] == [
        ("gov", "government")
    ]
    status, _, body = gw.request("GET", "/admin/audit/denials?by=colour", token=TOKEN)
    assert status == 400 and body["error"]["param"] == "by"

    cfg = data_dir / "cli.yaml"
    cfg.write_text(f"data_dir: {data_dir}\n")
    done = CliRunner().invoke(cli, ["-c", str(cfg), "audit", "denials", "--format", "json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["groups"] == body_first["groups"]
    shown = CliRunner().invoke(cli, ["-c", str(cfg), "audit", "denials"])
    assert shown.exit_code == 0, shown.output
    table = shown.output
    lines = [line.split("\t") for line in table.strip().splitlines()]
    assert lines[0] == ["rule", "jurisdiction", "requests", "people", "first", "last", "citations"]
    assert "Secretary of the Department of Home Affairs" in lines[1][-1]
    assert lines[-1][:3] == ["total", "", "1"]


def test_two_governments_refusing_one_request_are_each_credited_with_their_own_action(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """South Australia's staff are refused DeepSeek's hosted service by their state's direction
    and by the Commonwealth's: the denials report names, under each rule, only the action that
    rule cited (the record keeps each denying rule's citations, since 2026-12-01)."""
    settings = Settings.model_validate(deepseek_pair(tmp_path, upstream))
    gw = RunningGateway(settings, Components(pii_disabled=True)).start()
    try:
        sa_staff = gw.create_key(user="sal", team="adl", jurisdiction="AU-SA", sector="government")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=sa_staff, max_retries=0)
        with pytest.raises(openai.PermissionDeniedError):
            sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
            )
        _wait_outcomes(gw, 1)
        status, _, body = gw.request("GET", "/admin/audit/denials?by=rule", token=TOKEN)
        assert status == 200, body
        cited = {g["rule"]: [c["id"] for c in g["citations"]] for g in body["groups"]}
        assert cited["au.au-sa-2025-02-05.hosted"] == ["au-sa-2025-02-05"]
        assert cited["au.au-homeaffairs-2025-02-04.hosted"] == ["au-homeaffairs-2025-02-04"]
        # without the rule: the request once, with every action its rules cited
        status, _, body = gw.request("GET", "/admin/audit/denials?by=team", token=TOKEN)
        (row,) = body["groups"]
        assert [c["id"] for c in row["citations"]] == [
            "au-homeaffairs-2025-02-04",
            "au-sa-2025-02-05",
        ]
    finally:
        gw.stop()
