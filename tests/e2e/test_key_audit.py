"""A key's life is in the audit trail: created (for which principal, with which limits), its
limits changed, revoked — by whom. Granting access waits for the record; revoking never does."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import load_settings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

TOKEN = RunningGateway.ADMIN_TOKEN


@pytest.fixture
def memory_gw(
    tmp_path: Path, upstream: FakeUpstream
) -> Iterator[tuple[RunningGateway, MemoryAuditSink]]:
    """A gateway whose audit sink is the in-memory fake (``down`` fails its writes)."""
    audit = MemoryAuditSink()
    gw = RunningGateway(
        core_settings(tmp_path, upstream),
        Components(policy=FakeDecider(), audit=audit, pii_disabled=True),
    ).start()
    yield gw, audit
    gw.stop()


def _key_rows(data_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "portcullis.db") as db:
        rows = db.execute(
            "SELECT body, user_id, jurisdiction FROM audit_log WHERE kind = 'key' ORDER BY seq"
        ).fetchall()
    return [{**json.loads(b), "_user": u, "_jurisdiction": j} for b, u, j in rows]


def test_create_limits_and_revoke_are_recorded_with_the_principal_and_the_actor(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    gw = RunningGateway(
        core_settings(tmp_path, upstream), Components(policy=FakeDecider(), pii_disabled=True)
    ).start()
    try:
        status, _, made = gw.request(
            "POST",
            "/admin/keys",
            {"user": "kim", "jurisdiction": "KR", "sector": "government", "roles": ["auditor"]},
            token=TOKEN,
        )
        assert status == 201
        key_id = made["key_id"]
        status, _, _ = gw.request(
            "PATCH", f"/admin/keys/{key_id}", {"tokens_per_minute": 5000}, token=TOKEN
        )
        assert status == 200
        assert gw.request("DELETE", f"/admin/keys/{key_id}", token=TOKEN)[0] == 200

        rows = _key_rows(tmp_path)
        assert [r["action"]["op"] for r in rows] == ["create", "limits", "revoke"]
        assert all(r["actor"] == "admin-token" for r in rows)
        assert all(r["principal"]["key_id"] == key_id for r in rows)
        assert all((r["_user"], r["_jurisdiction"]) == ("kim", "KR") for r in rows)
        assert rows[0]["principal"]["sector"] == "government"
        assert rows[0]["principal"]["roles"] == ["auditor"]
        assert rows[1]["action"]["tokens_per_minute"] == 5000
        assert made["key"] not in json.dumps(rows)  # the key itself is never recorded

        # An auditor's export for that user holds the key's whole life.
        auditor = gw.create_key(
            user="aud", jurisdiction="KR", sector="government", roles=["auditor"]
        )
        status, _, body = gw.request(
            "GET", "/admin/audit/export?format=jsonl&user=kim", token=auditor, parse=False
        )
        assert status == 200
        kinds = [json.loads(line)["kind"] for line in body.decode().splitlines() if line]
        assert kinds.count("key") == 3
        # Only the keys' history: kind=key (an unknown kind is refused, naming the list).
        status, _, body = gw.request(
            "GET", "/admin/audit/export?format=jsonl&kind=key", token=auditor, parse=False
        )
        assert status == 200
        only = [json.loads(line) for line in body.decode().splitlines() if line]
        assert {e["kind"] for e in only} == {"key"} and len(only) == 4  # kim's 3, the auditor's
        status, _, err = gw.request("GET", "/admin/audit/export?kind=keys", token=auditor)
        assert status == 400 and err["error"]["param"] == "kind"
        # the auditor may read, not change: refused, and the refusal is in the durable trail
        assert gw.request("DELETE", f"/admin/keys/{key_id}", token=auditor)[0] == 403
        status, _, body = gw.request(
            "GET", "/admin/audit/export?format=jsonl&kind=access", token=auditor, parse=False
        )
        (entry,) = [json.loads(line)["event"] for line in body.decode().splitlines() if line]
        assert entry["kind"] == "access" and entry["action"]["handler"] == "revoke_key"
    finally:
        gw.stop()


def test_no_key_is_granted_without_its_record_but_a_revocation_always_happens(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    key = gw.create_key(user="lee", jurisdiction="AU", sector="private")
    key_id = key.split("_")[1]
    audit.down = True
    fields = {"user": "nobody", "jurisdiction": "AU", "sector": "private"}
    status, _, err = gw.request("POST", "/admin/keys", fields, token=TOKEN)
    assert status == 503 and err["error"]["code"] == "audit_unavailable"
    listed = gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"]
    assert [k["user"] for k in listed] == ["lee"]  # nothing issued
    status, _, err = gw.request(
        "PATCH", f"/admin/keys/{key_id}", {"requests_per_minute": 0}, token=TOKEN
    )
    assert status == 503
    assert (
        gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"][0]["requests_per_minute"] is None
    )  # unchanged
    assert gw.request("DELETE", f"/admin/keys/{key_id}", token=TOKEN)[0] == 200
    assert gw.request("GET", "/v1/models", token=key)[0] == 401  # revoked all the same
    assert [kind for kind, _ in audit.records] == ["key"]  # only the first creation


def test_the_cli_records_the_keys_it_creates_in_the_same_trail(tmp_path: Path) -> None:
    cfg = tmp_path / "portcullis.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["-c", str(cfg), "db", "upgrade"]).exit_code == 0
    result = runner.invoke(
        cli,
        ["-c", str(cfg), "keys", "create", "--user", "ops", "--jurisdiction", "TW",
         "--sector", "education", "--rpm", "30", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    key_id = json.loads(result.output)["key_id"]
    assert runner.invoke(cli, ["-c", str(cfg), "keys", "revoke", key_id]).exit_code == 0
    rows = _key_rows(load_settings(cfg).data_dir)
    assert [r["action"]["op"] for r in rows] == ["create", "revoke"]
    assert rows[0]["actor"].startswith("cli") and rows[0]["action"]["requests_per_minute"] == 30
    assert rows[0]["principal"]["jurisdiction"] == "TW"
    # No gateway has started here, so there is no signing key yet: said, not a traceback.
    verify = runner.invoke(cli, ["-c", str(cfg), "audit", "verify"])
    assert verify.exit_code == 1 and "no audit signing key" in verify.output, verify.output
    with sqlite3.connect(tmp_path / "portcullis.db") as db:  # one linear history: seq 1, 2
        assert db.execute("SELECT size FROM audit_head").fetchone() == (2,)
        assert db.execute("SELECT seq FROM audit_log ORDER BY seq").fetchall() == [(1,), (2,)]


def test_a_key_with_an_expiry_through_the_admin_api(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    fields = {"user": "temp", "jurisdiction": "AU", "sector": "contractor"}
    for bad in ("2001-01-01T00:00:00Z", "next week", 1893456000, "2099-01-01T00:00:00Z"):
        status, _, err = gw.request(
            "POST", "/admin/keys", {**fields, "expires_at": bad}, token=TOKEN
        )
        assert status == 400 and "expires_at" in err["error"]["message"], (bad, err)
    status, _, made = gw.request(
        "POST",
        "/admin/keys",
        {**fields, "expires_at": "2030-06-30T17:00:00+10:00"},
        token=TOKEN,
    )
    assert status == 201 and made["expires_at"].startswith("2030-06-30T07:00:00")
    assert made["expired"] is False
    assert gw.request("GET", "/v1/models", token=made["key"])[0] == 200
    ((kind, event),) = audit.records
    assert kind == "key" and event["action"]["expires_at"] == "2030-06-30T07:00:00Z"


def test_an_admin_body_past_its_cap_is_refused_before_it_is_read_whole(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, _ = memory_gw
    big = json.dumps({"user": "u", "jurisdiction": "AU", "sector": "private",
                      "description": "x" * 70_000}).encode()  # fmt: skip
    status, _, err = gw.request("POST", "/admin/keys", raw=big, token=TOKEN)
    assert status == 413 and err["error"]["code"] == "request_too_large"
    assert gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user": 5}, "user"),
        ({"jurisdiction": None}, "jurisdiction"),
        ({"jurisdiction": 61}, "jurisdiction"),
        ({"sector": ["private"]}, "sector"),
        ({"team": 5}, "team"),
        ({"tenant": 5}, "tenant"),
        ({"roles": "admin"}, "role"),
        ({"roles": [5]}, "roles"),
        ({"tags": [5]}, "tag"),
        ({"description": "d" * 501}, "description"),
        ({"description": {"a": 1}}, "description"),
        ({"requests_per_minute": "60"}, "requests_per_minute"),
    ],
)
def test_a_key_request_of_the_wrong_shape_is_a_400_naming_the_field(
    memory_gw: tuple[RunningGateway, MemoryAuditSink], change: dict[str, Any], field: str
) -> None:
    gw, _ = memory_gw
    body = {"user": "u", "jurisdiction": "AU", "sector": "private", **change}
    status, _, err = gw.request("POST", "/admin/keys", body, token=TOKEN)
    assert status == 400 and field in err["error"]["message"], err
    assert gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"] == []


def test_keys_are_listed_by_user_team_and_jurisdiction_and_fetched_one_by_one(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, _ = memory_gw
    for user, j, team in (
        ("ann", "AU", "ops"),
        ("bea", "AU-NSW", "legal"),
        ("cho", "KR", "ops"),
    ):
        gw.create_key(user=user, jurisdiction=j, sector="private", team=team)

    def users(query: str) -> list[str]:
        status, _, body = gw.request("GET", f"/admin/keys?{query}", token=TOKEN)
        assert status == 200, body
        return sorted(k["user"] for k in body["data"])

    assert users("jurisdiction=AU") == ["ann", "bea"]  # the country includes its states
    assert users("jurisdiction=au-nsw") == ["bea"]
    assert users("team=ops") == ["ann", "cho"]
    assert users("user=cho&team=ops") == ["cho"]
    assert users("user=nobody") == []
    for bad in ("user=a%20b", "jurisdiction=AU%00", "colour=red"):
        status, _, err = gw.request("GET", f"/admin/keys?{bad}", token=TOKEN)
        assert status == 400 and err["error"]["code"] == "invalid_parameter", bad

    key_id = gw.request("GET", "/admin/keys?user=ann", token=TOKEN)[2]["data"][0]["key_id"]
    assert gw.request("DELETE", f"/admin/keys/{key_id}", token=TOKEN)[0] == 200
    status, _, one = gw.request("GET", f"/admin/keys/{key_id}", token=TOKEN)
    assert status == 200 and one["user"] == "ann" and one["revoked_at"] is not None
    assert "key" not in one  # never the key itself
    assert gw.request("GET", "/admin/keys/000000000000", token=TOKEN)[0] == 404
    assert users("jurisdiction=AU") == ["bea"]
    assert users("jurisdiction=AU&include_revoked=true") == ["ann", "bea"]


def test_every_key_of_a_person_leaving_is_revoked_at_once_and_each_is_recorded(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    leo = [
        gw.create_key(user="leo", jurisdiction="AU", sector="private"),
        gw.create_key(user="leo", jurisdiction="AU", sector="private", tenant="agency"),
        gw.create_key(user="leo", jurisdiction="AU", sector="private", team="ops"),
    ]
    other = gw.create_key(user="leon", jurisdiction="AU", sector="private")
    ids = [k.split("_")[1] for k in leo]
    assert gw.request("DELETE", f"/admin/keys/{ids[2]}", token=TOKEN)[0] == 200  # already gone
    # only one tenant's, then all the rest
    status, _, body = gw.request(
        "POST", "/admin/keys/revoke", {"user": "leo", "tenant": "agency"}, token=TOKEN
    )
    assert status == 200 and body == {"user": "leo", "revoked": [ids[1]]}, body
    status, _, body = gw.request("POST", "/admin/keys/revoke", {"user": "leo"}, token=TOKEN)
    assert status == 200 and body == {"user": "leo", "revoked": [ids[0]]}, body
    for key in leo:
        assert _models(gw, key)[0] == 401
    assert _models(gw, other)[0] == 200  # a name that merely starts the same is someone else
    revocations = [
        e for kind, e in audit.records
        if kind == "key" and e["action"]["op"] == "revoke" and e["principal"]["user"] == "leo"
    ]  # fmt: skip
    assert [e["actor"] for e in revocations] == ["admin-token"] * 3
    assert gw.request("POST", "/admin/keys/revoke", {"user": "leo"}, token=TOKEN)[2] == {
        "user": "leo", "revoked": [],
    }  # fmt: skip
    for bad in ({}, {"user": ""}, {"user": 7}, {"user": "leo", "team": "ops"},
                {"user": "a b"}, {"user": "leo", "tenant": 3}):  # fmt: skip
        status, _, err = gw.request("POST", "/admin/keys/revoke", bad, token=TOKEN)
        assert status == 400 and err["error"]["code"] == "invalid_parameter", (bad, err)
    staff = gw.create_key(user="sue", jurisdiction="AU", sector="private")
    assert gw.request("POST", "/admin/keys/revoke", {"user": "leon"}, token=staff)[0] == 403
    assert _models(gw, other)[0] == 200


def _models(gw: RunningGateway, key: str) -> tuple[int, Any]:
    status, _, body = gw.request("GET", "/v1/models", token=key)
    return status, body


def test_a_key_is_rotated_with_a_grace_period_and_its_expiry_moved_through_the_admin_api(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    fields = {"user": "rota", "jurisdiction": "AU-VIC", "sector": "government", "team": "ops",
              "roles": ["auditor"], "tags": ["pilot"], "description": "ticket 42",
              "requests_per_minute": 30, "expires_at": "2030-01-01T00:00:00Z"}  # fmt: skip
    status, _, made = gw.request("POST", "/admin/keys", fields, token=TOKEN)
    assert status == 201
    old_id, old_key = made["key_id"], made["key"]

    status, _, rotated = gw.request(
        "POST", f"/admin/keys/{old_id}/rotate", {"grace_seconds": 3600}, token=TOKEN
    )
    assert status == 201, rotated
    new_key = rotated["key"]
    assert rotated["key_id"] != old_id and rotated["rotated_from"] == old_id
    same = ("user", "team", "jurisdiction", "sector", "roles", "tags", "description",
            "requests_per_minute", "tokens_per_minute", "expires_at")  # fmt: skip
    assert {f: rotated[f] for f in same} == {f: made[f] for f in same}
    old = rotated["replaced"]
    assert old["key_id"] == old_id and old["revoked_at"] is None and old["expires_at"]
    # both work during the grace period, each as the same principal
    for key in (old_key, new_key):
        assert gw.request("GET", "/v1/models", token=key)[0] == 200

    # the old key's expiry moved to now-ish ends the grace at once; the new key is untouched
    status, _, err = gw.request(
        "PATCH", f"/admin/keys/{old_id}", {"expires_at": "2001-01-01T00:00:00Z"}, token=TOKEN
    )
    assert status == 400 and "expires_at" in err["error"]["message"]
    status, _, moved = gw.request(
        "PATCH", f"/admin/keys/{rotated['key_id']}", {"expires_at": None}, token=TOKEN
    )
    assert status == 200 and moved["expires_at"] is None
    # a rotation without grace revokes at once; an unknown or retired key is a 404
    status, _, again = gw.request("POST", f"/admin/keys/{rotated['key_id']}/rotate", token=TOKEN)
    assert status == 201 and again["replaced"]["revoked_at"] is not None
    assert gw.request("GET", "/v1/models", token=new_key)[0] == 401
    assert gw.request("GET", "/v1/models", token=again["key"])[0] == 200
    assert gw.request("POST", f"/admin/keys/{rotated['key_id']}/rotate", token=TOKEN)[0] == 404
    assert gw.request("POST", "/admin/keys/000000000000/rotate", token=TOKEN)[0] == 404
    for bad in ({"grace_seconds": -1}, {"grace_seconds": 31 * 86400}, {"grace_seconds": "1h"},
                {"grace": 5}):  # fmt: skip
        status, _, err = gw.request("POST", f"/admin/keys/{again['key_id']}/rotate", bad,
                                    token=TOKEN)  # fmt: skip
        assert status == 400, (bad, err)

    ops = [(e["action"]["op"], e["principal"]["key_id"]) for _, e in audit.records]
    assert ops == [
        ("create", old_id),
        ("rotate", rotated["key_id"]),
        ("expiry", rotated["key_id"]),
        ("rotate", again["key_id"]),
    ]
    rotate = audit.records[1][1]["action"]
    assert (rotate["replaces"], rotate["grace_seconds"]) == (old_id, 3600)
    assert audit.records[2][1]["action"]["expires_at"] is None
    assert all(k not in json.dumps(audit.records) for k in (old_key, new_key, again["key"]))


def test_a_rotated_key_shares_its_predecessors_allowance_not_a_fresh_one(
    memory_gw: tuple[RunningGateway, MemoryAuditSink], upstream: FakeUpstream
) -> None:
    """During a rotation's grace both keys work; they draw on one rate bucket (the chain's
    first key's), so rotating is no way to double a key's allowance."""
    gw, _ = memory_gw
    fields = {"user": "rl", "jurisdiction": "AU", "sector": "private", "requests_per_minute": 3}
    status, _, made = gw.request("POST", "/admin/keys", fields, token=TOKEN)
    assert status == 201
    chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    assert gw.request("POST", "/v1/chat/completions", chat, token=made["key"])[0] == 200
    status, _, second = gw.request(
        "POST", f"/admin/keys/{made['key_id']}/rotate", {"grace_seconds": 600}, token=TOKEN
    )
    assert status == 201 and second["lineage"] == made["key_id"] == made["lineage"]
    status, _, third = gw.request("POST", f"/admin/keys/{second['key_id']}/rotate", token=TOKEN)
    assert status == 201 and third["lineage"] == made["key_id"]  # the chain's first key
    answers = [
        gw.request("POST", "/v1/chat/completions", chat, token=key)[0]
        for key in (made["key"], third["key"], third["key"])
    ]
    assert answers == [200, 200, 429]  # 3 a minute across the chain, not 3 per key
    assert len(upstream.received) == 3


def test_no_rotation_or_expiry_change_without_its_record(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    key = gw.create_key(user="lee", jurisdiction="AU", sector="private")
    key_id = key.split("_")[1]
    audit.down = True
    status, _, err = gw.request("POST", f"/admin/keys/{key_id}/rotate", token=TOKEN)
    assert status == 503 and err["error"]["code"] == "audit_unavailable"
    status, _, _ = gw.request(
        "PATCH", f"/admin/keys/{key_id}", {"expires_at": "2029-01-01T00:00:00Z"}, token=TOKEN
    )
    assert status == 503
    (only,) = gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"]
    assert (only["key_id"], only["expires_at"]) == (key_id, None)  # nothing issued or moved
    assert gw.request("GET", "/v1/models", token=key)[0] == 200


def test_a_key_limited_to_some_models_sees_and_reaches_only_those(
    memory_gw: tuple[RunningGateway, MemoryAuditSink], upstream: FakeUpstream
) -> None:
    gw, audit = memory_gw
    fields = {"user": "narrow", "jurisdiction": "AU", "sector": "private"}
    status, _, made = gw.request("POST", "/admin/keys", {**fields, "models": ["FAST"]}, token=TOKEN)
    assert status == 201 and made["models"] == ["FAST"], made
    key = made["key"]
    # an alias on the list stands for its model: gpt-test, and only it
    status, _, listed = gw.request("GET", "/v1/models", token=key)
    assert status == 200 and [m["id"] for m in listed["data"]] == ["gpt-test"]
    assert gw.request("GET", "/v1/models/emb-test", token=key)[0] == 404
    chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    assert gw.request("POST", "/v1/chat/completions", chat, token=key)[0] == 200
    status, _, err = gw.request(
        "POST", "/v1/embeddings", {"model": "emb-test", "input": "x"}, token=key
    )
    assert status == 404 and err["error"]["code"] == "model_not_found"  # as if not served
    assert [r["path"] for r in upstream.received] == ["/v1/chat/completions"]

    kid = made["key_id"]
    for bad in ([], "gpt-test", ["a b"], [5], ["x"] * 101):
        status, _, err = gw.request("PATCH", f"/admin/keys/{kid}", {"models": bad}, token=TOKEN)
        assert status == 400 and "models" in err["error"]["message"], bad
    status, _, changed = gw.request("PATCH", f"/admin/keys/{kid}", {"models": None}, token=TOKEN)
    assert status == 200 and changed["models"] is None
    status, _, listed = gw.request("GET", "/v1/models", token=key)
    assert sorted(m["id"] for m in listed["data"]) == ["emb-test", "gpt-test"]
    status, _, rotated = gw.request(
        "PATCH", f"/admin/keys/{kid}", {"models": ["emb-test"]}, token=TOKEN
    )
    status, _, rotated = gw.request("POST", f"/admin/keys/{kid}/rotate", token=TOKEN)
    assert status == 201 and rotated["models"] == ["emb-test"]  # the successor keeps the list
    ops = [(e["action"]["op"], e["action"].get("models")) for _, e in audit.records]
    assert ops == [
        ("create", "FAST"),
        ("models", None),
        ("models", "emb-test"),
        ("rotate", "emb-test"),
    ]


def test_a_key_without_the_role_is_refused_every_admin_action_and_each_try_is_recorded(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    gw, audit = memory_gw
    staff = gw.create_key(user="eve", jurisdiction="AU", sector="private", roles=["analyst"])
    auditor = gw.create_key(user="aud", jurisdiction="AU", sector="private", roles=["auditor"])
    target = gw.create_key(user="vic", jurisdiction="AU", sector="private")
    vic = target.split("_")[1]
    before = len(audit.records)
    tries = [
        (staff, "POST", "/admin/keys", {"user": "eve2", "jurisdiction": "AU",
                                        "sector": "private", "roles": ["admin"]}),
        (staff, "PATCH", f"/admin/keys/{vic}", {"requests_per_minute": 0}),
        (staff, "DELETE", f"/admin/keys/{vic}", None),
        (staff, "POST", f"/admin/keys/{vic}/rotate", None),
        (staff, "GET", "/admin/audit/export", None),
        (auditor, "POST", "/admin/config/reload", None),  # an auditor reads; it does not change
        (auditor, "GET", "/admin/keys", None),
        (staff, "GET", f"/admin/keys/{vic}", None),
        (staff, "PATCH", f"/admin/keys/{staff.split('_')[1]}", {"requests_per_minute": 0}),
        (staff, "POST", "/admin/policy/reload", None),
        (staff, "GET", "/admin/config", None),
        (staff, "GET", "/admin/audit/usage", None),
        (staff, "GET", "/admin/audit/transfers", None),
        (staff, "GET", "/admin/audit/denials", None),
    ]  # fmt: skip
    for key, method, path, body in tries:
        status, _, err = gw.request(method, path, body, token=key)
        assert status == 403 and err["error"]["code"] == "forbidden", (path, err)
    assert [k["user"] for k in gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"]] == [
        "eve", "aud", "vic"]  # fmt: skip
    refused = audit.records[before:]
    assert [kind for kind, _ in refused] == ["access"] * len(tries)
    assert [e["action"]["handler"] for _, e in refused] == [
        "create_key", "update_key", "revoke_key", "rotate_key", "export_audit", "reload_config",
        "list_keys", "get_key", "update_key", "reload_policy", "show_config",
        "audit_usage", "audit_transfers", "audit_denials"]  # fmt: skip
    first = refused[0][1]
    assert first["actor"] == f"key:{staff.split('_')[1]}" and first["principal"]["user"] == "eve"
    assert (first["action"]["method"], first["action"]["needs"]) == ("POST", "admin")
    assert refused[4][1]["action"]["needs"] == "auditor"
    # a caller with no valid key is a 401 and not recorded (anyone can knock); so is an admin
    # key once revoked or expired (reliability A-2)
    assert gw.request("GET", "/admin/keys", token="pcs_nobody")[0] == 401
    assert len(audit.records) == before + len(tries)
    admin = gw.create_key(user="ops", jurisdiction="AU", sector="private", roles=["admin"])
    assert gw.request("GET", "/admin/keys", token=admin)[0] == 200
    assert gw.request("DELETE", f"/admin/keys/{admin.split('_')[1]}", token=TOKEN)[0] == 200
    status, _, made = gw.request(
        "POST", "/admin/keys",
        {"user": "tmp", "jurisdiction": "AU", "sector": "private", "roles": ["admin"],
         "expires_at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()},
        token=TOKEN,
    )  # fmt: skip
    assert status == 201 and gw.request("GET", "/admin/keys", token=made["key"])[0] == 200
    time.sleep(1.1)
    for key in (admin, made["key"]):
        for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys"),
                             ("GET", "/admin/audit/export")):  # fmt: skip
            assert gw.request(method, path, {}, token=key)[0] == 401, (method, path)


def test_each_secret_serves_its_own_purpose_only(
    memory_gw: tuple[RunningGateway, MemoryAuditSink],
) -> None:
    """Reliability A-5: the admin token is no API key, an API key is no admin token, and the
    server secret's derived keys (key digests, PII pseudonyms, audit digests) differ by label."""
    from gateway.secrets_store import ServerSecret

    gw, _ = memory_gw
    key = gw.create_key(user="u", jurisdiction="AU", sector="private")
    assert gw.request("GET", "/v1/models", token=TOKEN)[0] == 401  # the admin token as a key
    chat = {"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}
    assert gw.request("POST", "/v1/chat/completions", chat, token=TOKEN)[0] == 401
    assert gw.request("GET", "/admin/keys", token=key)[0] == 403  # a key without the role
    # neither the server secret nor an audit signing key is a credential anywhere, however
    # presented (the console has no session tokens of its own: it sends the key typed into it)
    from audit.checkpoint import Signer

    data_dir = Path(gw.settings.data_dir)
    signing = data_dir / "audit" / "signing.key"
    Signer.from_file(signing)
    pem_lines = [ln for ln in signing.read_text().splitlines() if not ln.startswith("-----")]
    offered = [(data_dir / "secret.key").read_bytes().hex(), "".join(pem_lines)]
    offered += [f"pcs_{v[:12]}_{v[12:]}" for v in list(offered)]
    for wrong in offered:
        for method, path, body in (("GET", "/v1/models", None),
                                   ("POST", "/v1/chat/completions", chat),
                                   ("GET", "/admin/whoami", None), ("GET", "/admin/keys", None)):  # fmt: skip
            assert gw.request(method, path, body, token=wrong)[0] == 401, (path, wrong[:8])
    secret = ServerSecret(b"s" * 40)
    derived = {secret.derive(p) for p in ("api-key", "pii", "audit-digest")}
    assert len(derived) == 3 and secret.value not in derived
    assert ServerSecret(b"t" * 40).derive("api-key") != secret.derive("api-key")


def test_a_key_kept_to_some_networks_is_refused_elsewhere_and_the_refusal_is_recorded(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """A key made through the admin API with ``networks``, used with the openai SDK from
    127.0.0.1 (outside them): 403 ``address_not_allowed`` for chat and for the model list,
    nothing forwarded, the request's record naming the key; the change of networks is a
    recorded ``key`` entry; once 127.0.0.0/8 is allowed the same key works; the CLI makes and
    changes such keys too."""
    import openai

    gw = RunningGateway(
        core_settings(tmp_path, upstream), Components(policy=FakeDecider(), pii_disabled=True)
    ).start()
    try:
        status, _, made = gw.request(
            "POST",
            "/admin/keys",
            {"user": "ann", "jurisdiction": "AU", "sector": "private",
             "networks": ["10.20.0.0/16", "2001:db8::/32"]},
            token=TOKEN,
        )  # fmt: skip
        assert status == 201 and made["networks"] == ["10.20.0.0/16", "2001:db8::/32"], made
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=made["key"], max_retries=0)
        sent = len(upstream.received)
        with pytest.raises(openai.PermissionDeniedError) as refused:
            sdk.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        assert refused.value.code == "address_not_allowed"
        assert "10.20" not in str(refused.value.body)  # the caller is not told the networks
        with pytest.raises(openai.PermissionDeniedError):
            sdk.models.list()
        assert len(upstream.received) == sent  # nothing forwarded
        _, _, scraped = gw.request("GET", "/metrics", parse=False)
        assert 'portcullis_denials_total{reason="address_not_allowed"} 1.0' in scraped.decode()
        # through a proxy the server believes (127.0.0.1, the default of server.trusted_proxies),
        # the address it forwards is the client's: inside the key's networks
        proxied = openai.OpenAI(
            base_url=gw.base_url,
            api_key=made["key"],
            max_retries=0,
            default_headers={"X-Forwarded-For": "10.20.3.4"},
        )
        assert proxied.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        ).choices
        sent += 1
        bad = gw.request("PATCH", f"/admin/keys/{made['key_id']}", {"networks": ["x"]}, token=TOKEN)
        assert bad[0] == 400 and bad[2]["error"]["code"] == "invalid_parameter"
        status, _, changed = gw.request(
            "PATCH", f"/admin/keys/{made['key_id']}", {"networks": ["127.0.0.0/8"]}, token=TOKEN
        )
        assert status == 200 and changed["networks"] == ["127.0.0.0/8"]
        reply = sdk.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content and len(upstream.received) == sent + 1
        # the trail's refusals of such keys, found by their error code
        time.sleep(0.2)  # the outcomes are written after the answers
        status, _, page = gw.request(
            "GET", "/admin/audit/entries?error_code=address_not_allowed", token=TOKEN
        )
        # the chat's (a model list is not an audited request, refused or not)
        assert status == 200 and len(page["data"]) == 1, page
        assert page["data"][0]["entry"]["error_code"] == "address_not_allowed"
    finally:
        gw.stop()
    with sqlite3.connect(tmp_path / "portcullis.db") as db:
        outcomes = [
            json.loads(b)
            for (b,) in db.execute(
                "SELECT body FROM audit_log WHERE kind IN ('complete', 'incomplete') ORDER BY seq"
            )
        ]
    refusal = next(o for o in outcomes if o.get("error_code") == "address_not_allowed")
    assert refusal["principal"]["key_id"] == made["key_id"] and refusal["status"] == 403
    assert refusal["forwarded"] is False
    changes = [k["action"] for k in _key_rows(tmp_path) if k["action"]["op"] == "networks"]
    assert changes == [{"op": "networks", "networks": "127.0.0.0/8"}]
    created = next(k["action"] for k in _key_rows(tmp_path) if k["action"]["op"] == "create")
    assert created["networks"] == "10.20.0.0/16+2001:db8::/32"

    # the command line: made kept to a network, then let go anywhere
    cfg = tmp_path / "cli.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path)}))
    made_cli = CliRunner().invoke(
        cli,
        ["-c", str(cfg), "keys", "create", "--user", "bo", "--jurisdiction", "AU",
         "--sector", "private", "--network", "192.168.0.0/24", "--json"],
    )  # fmt: skip
    assert made_cli.exit_code == 0, made_cli.output
    key_id = json.loads(made_cli.output)["key_id"]
    assert json.loads(made_cli.output)["networks"] == ["192.168.0.0/24"]
    listed = CliRunner().invoke(cli, ["-c", str(cfg), "keys", "list"])
    assert "networks 192.168.0.0/24" in listed.output
    freed = CliRunner().invoke(cli, ["-c", str(cfg), "keys", "networks", key_id, "--anywhere"])
    assert freed.exit_code == 0 and "anywhere" in freed.output, freed.output
    neither = CliRunner().invoke(cli, ["-c", str(cfg), "keys", "networks", key_id])
    assert neither.exit_code == 2


@pytest.mark.parametrize(
    ("networks", "open_here"), [(["10.0.0.0/8"], False), (["127.0.0.0/8"], True)]
)
def test_the_admin_api_can_be_kept_to_some_networks(
    tmp_path: Path, upstream: FakeUpstream, networks: list[str], open_here: bool
) -> None:
    """``admin.networks``: from elsewhere every admin route is a 403 ``address_not_allowed``,
    the admin token and an auditor's key alike, before any credential is looked at; the
    inference API is not concerned; a bad block is refused at start."""
    admin = {"token_file": str(tmp_path / "admin.token"), "token_env": None, "networks": networks}
    (tmp_path / "admin.token").write_text(TOKEN)
    settings = core_settings(tmp_path, upstream, admin=admin)
    gw = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    try:
        ann = gw.create_key(user="ann", jurisdiction="AU", sector="private") if open_here else None
        status, _, body = gw.request("GET", "/admin/keys", token=TOKEN)
        if open_here:
            assert status == 200
        else:
            assert status == 403 and body["error"]["code"] == "address_not_allowed", body
            assert "admin.networks" in body["error"]["message"]
            # a wrong token gets the same 403: nothing about credentials is said from outside
            assert gw.request("GET", "/admin/keys", token="wrong")[0] == 403
        assert gw.request("GET", "/console/", parse=False)[0] == 200  # the static page itself
        if ann is not None:
            import openai

            sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
            assert sdk.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            ).choices
    finally:
        gw.stop()
    from gateway.config import Settings

    with pytest.raises(ValueError, match="networks"):
        Settings.model_validate({"admin": {"networks": ["10.0.0.0/40"]}})
