"""Reliability A-6: no secret in any output. The real ``portcullis serve`` at log level debug,
its upstream refusing the gateway's credential with an error that echoes it (as some providers
do), clients sending wrong keys, keys in the URL, the admin token as an API key. Afterwards no
5-character piece of any secret — a client key's secret part, the upstream credential, the admin
token — is found in the process's whole output or in any answer, and no 8-character piece in the
database or the audit checkpoints."""

from __future__ import annotations

import os
import secrets
import signal
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
import yaml

from tests.e2e.test_crash_recovery import _migrate_and_key, _serve
from tests.support.gateway import _free_port
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


def _pieces(secret: str, n: int) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def _call(url: str, headers: dict[str, str], body: bytes | None) -> bytes:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read() + str(resp.headers).encode()
    except urllib.error.HTTPError as err:
        return err.read() + str(err.headers).encode()


def test_no_piece_of_a_secret_reaches_logs_answers_or_the_database(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    upstream_key = "sk-" + secrets.token_urlsafe(32)
    admin_token = "adm-" + secrets.token_urlsafe(32)
    data = tmp_path / "data"
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(data),
        "pii": {"enabled": False},
        "admin": {"token_env": "A6_ADMIN_TOKEN"},
        "backends": [{
            "id": "b", "base_url": upstream.base_url, "models": ["gpt-test"],
            "credential": {"env": "A6_UPSTREAM_KEY"},
            "operator": "openai", "model_family": "gpt", "model_origin": "US",
            "hosting_country": "US", "max_retries": 0,
        }],
    }))  # fmt: skip
    env = {**os.environ, "A6_UPSTREAM_KEY": upstream_key, "A6_ADMIN_TOKEN": admin_token}
    key = _migrate_and_key(cfg, env, "a6")
    wrong = f"pcs_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    upstream.mode, upstream.error_status = "error", 401
    upstream.error_body = {
        "error": {"message": f"Incorrect API key provided: {upstream_key}", "code": "invalid_key"}
    }
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = _serve(cfg, port, log, env, "--log-level", "debug")
    base = f"http://127.0.0.1:{port}"
    answers: list[bytes] = []
    try:
        sdk = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:  # the upstream refuses our key
            sdk.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        answers.append(refused.value.response.content)
        assert upstream.received and upstream.received[-1]["headers"]["Authorization"] == (
            f"Bearer {upstream_key}"
        )  # it was sent there, and only there
        chat = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}'
        json_h = {"Content-Type": "application/json"}
        for url, headers in (
            (base + "/v1/chat/completions", {**json_h, "Authorization": f"Bearer {wrong}"}),
            (base + f"/v1/chat/completions?api_key={key}&key={wrong}", json_h),
            (base + "/v1/chat/completions", {**json_h, "Authorization": f"Bearer {admin_token}"}),
            (base + "/v1/chat/completions", {**json_h, "api-key": key, "x-api-key": wrong}),
            (base + f"/v1/models?key={admin_token}", {}),
            (base + "/admin/keys", {"Authorization": f"Bearer {key}"}),
            (base + "/admin/keys", {"Authorization": f"Basic {wrong}"}),
        ):
            answers.append(_call(url, headers, chat if "chat" in url else None))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    output = log.read_text(errors="replace")
    assert " DEBUG " in output  # the whole of it, at the most talkative level
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file() and p.suffix != ".key")
    everything = output.encode() + b"".join(answers)
    for name, secret in (
        ("client key", key.split("_", 2)[2]),
        ("wrong key", wrong.split("_", 2)[2]),
        ("upstream credential", upstream_key[3:]),
        ("admin token", admin_token[4:]),
    ):
        leaked = [p for p in _pieces(secret, 5) if p.encode() in everything]
        assert not leaked, (name, leaked[:3])
        stored_leaks = [p for p in _pieces(secret, 8) if p.encode() in stored]
        assert not stored_leaks, (name, stored_leaks[:3])
