"""The backend catalogue reloads without a restart: ``POST /admin/config/reload`` and ``kill -HUP``.

The gateway runs on the real embedded policy and the real SQLite audit trail, read from a
configuration file on disk; the operator edits the file and reloads. Evidence: what each real
upstream on 127.0.0.1 received, the policy's answers through the openai SDK, and the audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from audit.checkpoint import Signer
from audit.db import open_engine
from audit.verify import verify_database
from gateway.config import load_settings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings, deepseek_pair
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

PORTCULLIS = str(Path(sys.executable).parent / "portcullis")


@pytest.fixture
def second() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def _write(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(raw))


def _ask(gw: RunningGateway, key: str, model: str = "deepseek-chat") -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    return sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def _reload(gw: RunningGateway, token: str | None = RunningGateway.ADMIN_TOKEN) -> tuple[int, Any]:
    status, _, body = gw.request("POST", "/admin/config/reload", token=token)
    return status, body


def _audit_rows(data_dir: Path, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "portcullis.db") as db:
        rows = db.execute(
            "SELECT body FROM audit_log WHERE kind = ? ORDER BY seq", (kind,)
        ).fetchall()
    return [json.loads(b) for (b,) in rows]


def _wait_rows(data_dir: Path, kind: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 3
    while len(rows := _audit_rows(data_dir, kind)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


def test_a_backend_added_to_the_file_serves_after_a_reload_and_the_change_is_on_the_record(
    tmp_path: Path, upstream: FakeUpstream, second: FakeUpstream
) -> None:
    # At start the file has DeepSeek's hosted service only: a Korean ministry may not use it.
    cfg = tmp_path / "gateway.yaml"
    full = deepseek_pair(tmp_path, upstream)
    hosted_only = {**full, "backends": full["backends"][:1]}
    _write(cfg, hosted_only)
    gw = RunningGateway(load_settings(cfg), reload_from=lambda: load_settings(cfg)).start()
    try:
        key = gw.create_key(user="official", jurisdiction="KR", sector="government")
        with pytest.raises(openai.PermissionDeniedError):
            _ask(gw, key)
        assert upstream.received == []
        before = gw.app.state.services.config_hash

        # The operator adds the weights self-hosted on their own accelerators (a second server).
        self_hosted = {**full["backends"][1], "base_url": second.base_url}
        _write(cfg, {**hosted_only, "backends": [*hosted_only["backends"], self_hosted]})
        status, report = _reload(gw)
        assert status == 200, report
        assert report["applied"] is True
        assert report["backends"] == {
            "added": ["deepseek-self"],
            "removed": [],
            "changed": [],
            "credentials_changed": [],
        }
        assert report["previous_config_hash"] == before != report["config_hash"]
        assert report["restart_required"] == []

        reply = _ask(gw, key)
        assert reply.choices[0].message.content
        assert len(second.received) == 1 and upstream.received == []  # the hosted one: never

        # GET /admin/config shows what is running: facts, never a credential's value.
        status, _, shown = gw.request("GET", "/admin/config", token=RunningGateway.ADMIN_TOKEN)
        assert status == 200 and shown["config_hash"] == report["config_hash"]
        by_id = {b["id"]: b for b in shown["backends"]}
        assert by_id["deepseek-self"]["self_hosted"] is True
        assert by_id["deepseek-self"]["hosting_region"] == "AU-NSW"
        assert by_id["deepseek-self"]["base_url"] == second.base_url.rstrip("/")
        assert by_id["deepseek-hosted"]["usable"] is True

        # The change is in the audit log before it took effect, and the request after it
        # names the new configuration; the whole log still verifies.
        configs = _audit_rows(tmp_path, "config")
        assert len(configs) == 1
        action = configs[0]["action"]
        assert action["from"] == before and action["to"] == report["config_hash"]
        assert action["added"] == 1 and action["added_ids"] == "deepseek-self"
        assert action["via"] == "admin" and configs[0]["actor"] == "admin-token"
        done = _wait_rows(tmp_path, "complete", 2)
        assert done[-1]["config_hash"] == report["config_hash"]
        assert done[-1]["backend"]["id"] == "deepseek-self"
        assert done[0]["config_hash"] == before  # the denial, under the old configuration
        # each configuration's document is kept by the hash its records carry
        for digest, ids in ((before, ["deepseek-hosted"]),
                            (report["config_hash"], ["deepseek-hosted", "deepseek-self"])):  # fmt: skip
            document = (tmp_path / "config" / f"config-{digest}.json").read_bytes()
            assert hashlib.sha256(document).hexdigest()[:16] == digest
            assert [b["id"] for b in json.loads(document)["backends"]] == ids
    finally:
        gw.stop()
    verified = asyncio.run(_verify(tmp_path))
    # the key's creation, the denial's record, the reload's, the served request's intent and
    # completion
    assert verified.problems == [] and verified.entries == 5


async def _verify(data_dir: Path) -> Any:
    engine = open_engine(f"sqlite+aiosqlite:///{data_dir / 'portcullis.db'}")
    try:
        signer = Signer.from_file(data_dir / "audit" / "signing.key")
        return await verify_database(engine, signer.public, data_dir / "audit" / "checkpoints")
    finally:
        await engine.dispose()


def test_a_bad_file_changes_nothing_and_other_sections_are_named_not_applied(
    tmp_path: Path, upstream: FakeUpstream, second: FakeUpstream
) -> None:
    cfg = tmp_path / "gateway.yaml"
    raw = deepseek_pair(tmp_path, upstream)
    raw["backends"][1]["base_url"] = second.base_url
    _write(cfg, raw)
    gw = RunningGateway(load_settings(cfg), reload_from=lambda: load_settings(cfg)).start()
    try:
        key = gw.create_key(user="official", jurisdiction="KR", sector="government")
        assert _ask(gw, key).choices[0].message.content
        running = gw.app.state.services.config_hash

        # A typo: refused with the key named; the running catalogue still serves.
        broken = json.loads(json.dumps(raw))
        broken["backends"][1]["hosting_contry"] = "AU"
        _write(cfg, broken)
        status, body = _reload(gw)
        assert status == 422, body
        assert "hosting_contry" in body["error"]["message"]
        assert gw.app.state.services.config_hash == running
        assert _ask(gw, key).choices[0].message.content and len(second.received) == 2

        # Unchanged backends: nothing applied, nothing recorded.
        _write(cfg, raw)
        status, body = _reload(gw)
        assert status == 200 and body["applied"] is False and body["config_hash"] == running
        assert _audit_rows(tmp_path, "config") == []

        # The self-hosted backend removed and the port changed: the backend goes now, the
        # port is reported as needing a restart (and not half-applied).
        _write(cfg, {**raw, "backends": raw["backends"][:1], "server": {"port": 9999}})
        status, body = _reload(gw)
        assert status == 200, body
        assert body["backends"]["removed"] == ["deepseek-self"]
        assert body["restart_required"] == ["server"]
        assert gw.app.state.services.settings.server.port != 9999
        with pytest.raises(openai.PermissionDeniedError):
            _ask(gw, key)
        with pytest.raises(openai.NotFoundError):
            _ask(gw, key, "self/deepseek-chat")  # no longer a backend of that model
        assert len(second.received) == 2 and upstream.received == []
    finally:
        gw.stop()


def test_a_changed_credential_file_and_url_take_effect_on_the_next_request(
    tmp_path: Path,
    upstream: FakeUpstream,
    second: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "upstream.key"
    secret.write_text("sk-first")
    caplog.set_level(logging.DEBUG)
    cfg = tmp_path / "gateway.yaml"
    raw = json.loads(core_settings(tmp_path, upstream).model_dump_json())
    raw["backends"] = raw["backends"][:1]
    raw["backends"][0]["credential"] = {"file": str(secret)}
    _write(cfg, raw)
    gw = RunningGateway(
        load_settings(cfg),
        Components(policy=FakeDecider(), pii_disabled=True),
        reload_from=lambda: load_settings(cfg),
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
        _ask(gw, key, "gpt-test")
        assert upstream.received[-1]["headers"]["Authorization"] == "Bearer sk-first"
        secret.write_text("sk-rotated")
        raw["backends"][0]["base_url"] = second.base_url
        raw["backends"][0]["aliases"] = {"quick": "gpt-test"}
        _write(cfg, raw)
        status, body = _reload(gw)
        assert status == 200 and body["backends"]["changed"] == ["primary"], body
        _ask(gw, key, "quick")
        assert second.received[-1]["headers"]["Authorization"] == "Bearer sk-rotated"
        assert len(upstream.received) == 1
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        assert {m.id for m in sdk.models.list()} == {"gpt-test", "emb-test"}

        # Only the file's content rotated: the configuration is the same, the key is new.
        secret.write_text("sk-third")
        status, body = _reload(gw)
        assert status == 200 and body["applied"] is True, body
        assert body["backends"]["changed"] == []
        assert body["config_hash"] == body["previous_config_hash"]
        assert body["backends"]["credentials_changed"] == ["primary"]
        _ask(gw, key, "gpt-test")
        assert second.received[-1]["headers"]["Authorization"] == "Bearer sk-third"
        # The file emptied: the backend gets no more requests (its models are not listed).
        secret.write_text("")
        status, body = _reload(gw)
        assert status == 200 and body["backends"]["credentials_changed"] == ["primary"]
        assert sdk.models.list().data == []
        with pytest.raises(openai.InternalServerError) as exc:
            _ask(gw, key, "gpt-test")
        assert exc.value.status_code == 503 and len(second.received) == 2
    finally:
        gw.stop()
    assert not any("sk-" in r.getMessage() for r in caplog.records)  # values are never logged


def test_reload_is_refused_when_it_cannot_be_done_whole(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    cfg = tmp_path / "gateway.yaml"
    raw = json.loads(core_settings(tmp_path, upstream).model_dump_json())
    _write(cfg, raw)
    audit = MemoryAuditSink()
    gw = RunningGateway(
        load_settings(cfg),
        Components(policy=FakeDecider(), audit=audit, pii_disabled=True),
        reload_from=lambda: load_settings(cfg),
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private", roles=["auditor"])
        assert _reload(gw, token=None)[0] == 401
        assert _reload(gw, token=key)[0] == 403  # an API key without the admin role
        assert gw.request("GET", "/admin/config", token=key)[0] == 403

        # The audit store does not take the record: nothing changes.
        _write(cfg, {**raw, "backends": raw["backends"][:1]})
        audit.down = True
        status, body = _reload(gw)
        assert status == 503 and body["error"]["code"] == "audit_unavailable"
        assert len(gw.app.state.services.catalog.backends) == 2
        audit.down = False
        status, body = _reload(gw)
        assert status == 200 and body["backends"]["removed"] == ["secondary"]
        configs = [event for kind, event in audit.records if kind == "config"]
        assert len(configs) == 1 and configs[0]["action"]["removed_ids"] == "secondary"

        # Several workers: this call would reach one of them; SIGHUP is the way.
        services = gw.app.state.services
        services.settings = services.settings.model_copy(
            update={"server": services.settings.server.model_copy(update={"workers": 2})}
        )
        status, body = _reload(gw)
        assert status == 409 and "SIGHUP" in body["error"]["message"]
    finally:
        gw.stop()
    # Started without a file to read again: 409, named.
    (tmp_path / "plain").mkdir()
    plain = RunningGateway(
        core_settings(tmp_path / "plain", upstream),
        Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True),
    ).start()
    try:
        status, body = _reload(plain)
        assert status == 409 and "configuration file" in body["error"]["message"]
    finally:
        plain.stop()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sighup_to_portcullis_serve_reloads_the_backends(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    cfg = tmp_path / "gateway.yaml"
    data = tmp_path / "data"
    raw: dict[str, Any] = {
        "data_dir": str(data),
        "pii": {"enabled": False},
        "backends": [
            {
                "id": "first",
                "base_url": upstream.base_url,
                "models": ["model-a"],
                "operator": "openai",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "US",
            }
        ],
    }
    _write(cfg, raw)
    port = _port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PORTCULLIS_ADMIN_TOKEN": "t" * 32}
    subprocess.run([PORTCULLIS, "-c", str(cfg), "db", "upgrade"], check=True, env=env)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [PORTCULLIS, "-c", str(cfg), "serve", "--port", str(port), "--log-level", "info"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def backends() -> list[str]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/config", headers={"Authorization": "Bearer " + "t" * 32}
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return [b["id"] for b in json.loads(r.read())["backends"]]

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert backends() == ["first"]
                break
            except OSError:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        raw["backends"].append({**raw["backends"][0], "id": "second", "models": ["model-b"]})
        _write(cfg, raw)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while backends() != ["first", "second"]:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        assert proc.poll() is None  # reloaded, not restarted or stopped
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "configuration reload (signal): applied" in text
    assert _audit_rows(data, "config")[0]["action"]["via"] == "signal"


def test_requests_in_flight_through_reloads_are_all_served(
    tmp_path: Path, upstream: FakeUpstream, second: FakeUpstream
) -> None:
    """Reloads swapping the backend of a model back and forth while eight clients send: every
    request is answered by one catalogue or the other, none fails or goes astray."""
    import concurrent.futures as cf

    cfg = tmp_path / "gateway.yaml"
    raw = json.loads(core_settings(tmp_path, upstream).model_dump_json())
    raw["backends"] = raw["backends"][:1]
    other = json.loads(json.dumps(raw))
    other["backends"][0]["base_url"] = second.base_url
    other["backends"][0]["hosting_country"] = "SE"
    _write(cfg, raw)
    gw = RunningGateway(
        load_settings(cfg),
        Components(policy=FakeDecider(), audit=MemoryAuditSink(), pii_disabled=True),
        reload_from=lambda: load_settings(cfg),
    ).start()
    try:
        key = gw.create_key(user="alice", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)

        def client(_: int) -> int:
            n = 0
            for _ in range(30):
                reply = sdk.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": "hi"}]
                )
                n += bool(reply.choices[0].message.content)
            return n

        with cf.ThreadPoolExecutor(8) as pool:
            served = pool.map(client, range(8))
            for i in range(6):
                _write(cfg, other if i % 2 == 0 else raw)
                status, body = _reload(gw)
                assert status == 200 and body["backends"]["changed"] == ["primary"], body
                time.sleep(0.05)
            assert sum(served) == 240
        assert len(upstream.received) + len(second.received) == 240
        assert upstream.received and second.received
    finally:
        gw.stop()


def test_default_limits_and_request_bounds_are_reloaded_and_recorded(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    cfg = tmp_path / "gateway.yaml"
    raw = deepseek_pair(tmp_path, upstream)
    raw["limits"] = {"requests_per_minute": 1000, "tokens_per_minute": 0}
    _write(cfg, raw)
    gw = RunningGateway(load_settings(cfg), reload_from=lambda: load_settings(cfg)).start()
    try:
        key = gw.create_key(user="ops", jurisdiction="AU-NSW", sector="private")
        own = gw.create_key(user="svc", jurisdiction="AU-NSW", sector="private")
        kid = own.split("_")[1]
        status, _, _ = gw.request(
            "PATCH", f"/admin/keys/{kid}", {"requests_per_minute": 0}, token=gw.ADMIN_TOKEN
        )
        assert status == 200  # this key has its own limit (none): the default does not reach it
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        many = [{"role": "user", "content": "hi"}] * 3
        sdk.chat.completions.create(model="deepseek-chat", messages=many)

        # An incident: the default falls to 2 a minute and requests to 2 messages
        _write(cfg, {**raw, "limits": {"requests_per_minute": 2, "tokens_per_minute": 0},
                     "requests": {"max_messages": 2}})  # fmt: skip
        status, body = _reload(gw)
        assert status == 200 and body["applied"] is True, body
        assert body["sections"] == ["limits", "requests"] and body["restart_required"] == []
        with pytest.raises(openai.BadRequestError) as bad:
            sdk.chat.completions.create(model="deepseek-chat", messages=many)
        assert bad.value.param == "messages"
        one = [{"role": "user", "content": "hi"}]
        sdk.chat.completions.create(model="deepseek-chat", messages=one)  # the bucket holds
        served = 1
        with pytest.raises(openai.RateLimitError):
            for _ in range(5):
                sdk.chat.completions.create(model="deepseek-chat", messages=one)
                served += 1
        assert served <= 3  # from a full bucket of 2: two more at most, then 429
        for _ in range(4):  # the key with its own (no) limit is not held to the new default
            _ask(gw, own)

        (entry,) = _wait_rows(tmp_path, "config", 1)
        action = entry["action"]
        assert (action["limits"], action["requests"], action["added"]) == (True, True, 0)
        assert (action["requests_per_minute"], action["tokens_per_minute"]) == (2, 0)
        assert action["window"] == "bucket"
        assert entry["config_hash"] == gw.app.state.services.config_hash
    finally:
        gw.stop()
