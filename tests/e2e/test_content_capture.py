"""Content capture under a legal-hold obligation, end to end: the real gateway with the embedded
policy engine and the example overlay ``legal_hold``, the real PII guard (patterns), the real
audit sink and content vault on SQLite, the official SDK, the fake upstream. The request as the
caller sent it and the answer as the caller got it are sealed per tenant, read back only through
an audited, scoped read, and erased by shredding; a store that cannot take the request stops it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import load_settings
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EMAIL = "ada.lovelace@example.org"
WORD = "quixotic-marmalade"  # a word of the prompt that occurs nowhere else
TOKEN = RunningGateway.ADMIN_TOKEN


def _config(tmp: Path, upstream: FakeUpstream, capture: bool) -> dict[str, Any]:
    return {
        "data_dir": str(tmp),
        "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
        "policy": {"overlays": [str(ROOT / "policies/overlays/examples/legal_hold")]},
        "pii": {"ner": False},
        # the capture of an answer shares the write-ahead deadline (1 s by default), which a
        # loaded CI machine's vault write once missed (2026-12-01: the answer was not kept and
        # the test found none); the faults below are errors, not waits
        "audit": {"content_capture": capture, "intent_deadline_ms": 5000},
        "backends": [
            {
                "id": "primary",
                "base_url": upstream.base_url,
                "models": ["gpt-test"],
                "operator": "openai",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "US",
                "timeouts": {"connect_s": 2, "first_byte_s": 5, "idle_s": 5, "total_s": 10},
            }
        ],
    }


class World:
    def __init__(self, gw: RunningGateway, tmp: Path, path: Path) -> None:
        self.gw, self.tmp, self.path = gw, tmp, path
        self.held = gw.create_key(user="counsel", jurisdiction="GB", sector="private",
                                  tags=["legal-hold"])  # fmt: skip
        self.free = gw.create_key(user="dev", jurisdiction="GB", sector="private")

    def ask(self, key: str, stream: bool = False) -> tuple[str, Any]:
        sdk = openai.OpenAI(base_url=self.gw.base_url, api_key=key, max_retries=0)
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-test",
            messages=[{"role": "user", "content": f"Write to {EMAIL} about {WORD}"}],
            stream=stream,
        )
        answer = raw.parse()
        if stream:
            answer = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        return raw.headers["x-request-id"], answer

    def read(self, rid: str, token: str = TOKEN) -> tuple[int, Any]:
        status, _, body = self.gw.request("GET", f"/admin/audit/content/{rid}", token=token)
        return status, body

    def read_complete(self, rid: str) -> dict[str, Any]:
        """The capture once its answer is in (written after the answer went out)."""
        deadline = time.monotonic() + 5
        while True:
            status, doc = self.read(rid)
            assert status == 200, doc
            if doc["complete"] or time.monotonic() > deadline:
                return doc  # type: ignore[no-any-return]
            time.sleep(0.05)

    def entries(self, kind: str) -> list[dict[str, Any]]:
        return settled_entries(self.tmp, kind)

    def record(self, rid: str) -> dict[str, Any]:
        return next(e for e in self.entries("complete") if e["request_id"] == rid)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("capture")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(_config(tmp, upstream_server, capture=True)))
    gw = RunningGateway(load_settings(path)).start()
    yield World(gw, tmp, path)
    gw.stop()


def test_a_held_request_and_its_answer_are_sealed_and_read_back_as_the_caller_saw_them(
    world: World, upstream: FakeUpstream
) -> None:
    upstream.mode = "echo"
    rid, answer = world.ask(world.held)
    assert EMAIL not in json.dumps(upstream.received[-1]["json"])  # pseudonymised on the way
    assert EMAIL in answer.choices[0].message.content  # and restored for the caller
    record = world.record(rid)
    assert record["content_captured"] is True
    assert record["decision"]["obligations"]["retention_class"] == "legal_hold"
    doc = world.read_complete(rid)
    assert doc["request"]["messages"][0]["content"] == f"Write to {EMAIL} about {WORD}"
    assert doc["answer"]["choices"][0]["message"]["content"] == answer.choices[0].message.content
    assert (doc["complete"], doc["status"], doc["stream"]) == (True, 200, None)
    # sealed: the database's files hold neither the address nor the prompt's words
    stored = b"".join(f.read_bytes() for f in world.tmp.glob("portcullis.db*"))
    assert EMAIL.encode() not in stored and WORD.encode() not in stored
    # nor a key that opens it: the tenant's key is kept wrapped under the server secret
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    with sqlite3.connect(world.tmp / "portcullis.db") as db:
        tenant, nonce, sealed = db.execute(
            "SELECT tenant, nonce, ciphertext FROM audit_content WHERE request_id = ?", (rid,)
        ).fetchone()
        (key,) = db.execute(
            "SELECT key FROM audit_tenant_keys WHERE tenant = ?", (tenant,)
        ).fetchone()
    assert len(key) == 62 and key.startswith(b"W1")
    aad = f"portcullis-content/v1\n{tenant}\n{rid}".encode()
    for at in range(len(key) - 31):  # no 32 bytes of the row are the key
        with pytest.raises(InvalidTag):
            AESGCM(key[at : at + 32]).decrypt(nonce, sealed, aad)
    # the server secret, outside the database, opens it (the control for the above)
    from audit.vault import WRAP_PURPOSE
    from gateway.secrets_store import load_server_secret

    wrap = AESGCM(load_server_secret(world.tmp).derive(WRAP_PURPOSE))
    opened = wrap.decrypt(key[2:14], key[14:], f"portcullis-content-key/v1\n{tenant}".encode())
    assert json.loads(AESGCM(opened).decrypt(nonce, sealed, aad))["complete"] is True


def test_a_held_stream_is_kept_as_the_events_the_caller_received(
    world: World, upstream: FakeUpstream
) -> None:
    upstream.mode, upstream.piece_chars = "echo", 5
    rid, text = world.ask(world.held, stream=True)
    doc = world.read_complete(rid)
    assert doc["answer"] is None and doc["complete"] is True
    events = doc["stream"]
    assert (
        "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
        == text
    )
    assert EMAIL in text


def test_a_held_responses_request_is_kept_as_the_caller_sent_and_got_it(
    world: World, upstream: FakeUpstream
) -> None:
    sdk = openai.OpenAI(base_url=world.gw.base_url, api_key=world.held, max_retries=0)
    raw = sdk.responses.with_raw_response.create(model="gpt-test", input=f"About {WORD}")
    got = raw.parse()
    doc = world.read_complete(raw.headers["x-request-id"])
    assert doc["endpoint"] == "responses"
    assert doc["request"]["input"] == f"About {WORD}"  # the Responses request, not its chat form
    assert doc["answer"]["object"] == "response" and doc["answer"]["id"] == got.id


def test_a_held_anthropic_messages_request_is_kept_as_the_caller_sent_and_got_it(
    world: World, upstream: FakeUpstream
) -> None:
    import anthropic

    sdk = anthropic.Anthropic(base_url=world.gw.url, api_key=world.held, max_retries=0)
    turn = {"role": "user", "content": [{"type": "text", "text": f"About {WORD}"}]}
    raw = sdk.messages.with_raw_response.create(model="gpt-test", max_tokens=20, messages=[turn])
    got = raw.parse()
    doc = world.read_complete(raw.headers["x-request-id"])
    assert doc["endpoint"] == "messages"
    assert doc["request"]["messages"] == [turn]  # the Messages request, not its chat form
    assert doc["answer"]["type"] == "message" and doc["answer"]["id"] == got.id


def test_others_are_not_captured_and_reads_are_scoped_audited_and_role_bound(
    world: World, upstream: FakeUpstream
) -> None:
    rid_free, _ = world.ask(world.free)
    assert world.record(rid_free)["content_captured"] is False
    assert world.read(rid_free)[0] == 404
    rid, _ = world.ask(world.held)
    gb = world.gw.create_key(user="gb-aud", jurisdiction="GB", sector="private", roles=["auditor"])
    kr = world.gw.create_key(user="kr-aud", jurisdiction="KR", sector="private", roles=["auditor"])
    staff = world.gw.create_key(user="staff", jurisdiction="GB", sector="private")
    before = len(world.entries("content_read"))
    assert world.read(rid, gb)[0] == 200
    status, body = world.read(rid, kr)  # another jurisdiction's request: as if there were none
    assert status == 404 and EMAIL not in json.dumps(body)
    assert world.read(rid, staff)[0] == 403
    reads = world.entries("content_read")[before:]
    assert [r["actor"] for r in reads] == [gb.split("_")[1], kr.split("_")[1]]
    assert [r["request_id"] for r in reads] == [rid, rid]
    assert world.read("not%20an%20id%3F")[0] == 400
    # the command line reads it too, and that read is recorded as well
    done = CliRunner().invoke(cli, ["-c", str(world.path), "audit", "content", rid])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["request"]["messages"][0]["content"].startswith("Write to")
    assert len(world.entries("content_read")) == before + 3


def test_shredding_the_tenant_leaves_nothing_readable_and_later_captures_use_a_new_key(
    world: World, upstream: FakeUpstream
) -> None:
    rid, _ = world.ask(world.held)
    assert world.read(rid)[0] == 200
    done = CliRunner().invoke(cli, ["-c", str(world.path), "audit", "shred", "--tenant", "default"])
    assert done.exit_code == 0, done.output
    status, body = world.read(rid)
    assert status == 404 and "destroyed" in body["error"]["message"]
    after, _ = world.ask(world.held)  # a new key for the tenant: the new capture is readable
    assert world.read(after)[0] == 200
    assert world.read(rid)[0] == 404  # the old one stays unreadable under the new key
    code, _ = CliRunner().invoke(cli, ["-c", str(world.path), "audit", "verify"]), None
    assert code.exit_code == 0, code.output  # the log, which never held content, verifies


def test_a_capture_store_that_fails_stops_the_held_request_before_it_leaves(
    world: World, upstream: FakeUpstream
) -> None:
    with sqlite3.connect(world.tmp / "portcullis.db") as db:
        db.execute("ALTER TABLE audit_content RENAME TO audit_content_away")
    try:
        sent = len(upstream.received)
        with pytest.raises(openai.InternalServerError) as err:
            world.ask(world.held)
        assert err.value.status_code == 503
        assert err.value.body["code"] == "audit_unavailable"  # type: ignore[index]
        assert len(upstream.received) == sent  # nothing left
        world.ask(world.free)  # requests policy does not hold are served
        assert len(upstream.received) == sent + 1
    finally:
        with sqlite3.connect(world.tmp / "portcullis.db") as db:
            db.execute("ALTER TABLE audit_content_away RENAME TO audit_content")


def test_with_capture_turned_off_a_held_request_is_an_insecure_pass(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, upstream, capture=False)))
    gw = RunningGateway(load_settings(path)).start()
    try:
        w = World(gw, tmp_path, path)
        rid, _ = w.ask(w.held)
        record = w.record(rid)
        assert record["content_captured"] is False
        assert "audit.content_capture:false" in record["pii"]["insecure"]
        assert w.read(rid)[0] == 404
    finally:
        gw.stop()
