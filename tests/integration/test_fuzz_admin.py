"""Random admin API calls against the running gateway on SQLite and on the real PostgreSQL (whose
column sizes and types refuse what SQLite lets through): whatever the shape, the answer is a 2xx
or an OpenAI-shaped client error, never a 500; a refused key request creates nothing.

Bodies start from a valid request and change one to four members to random JSON (scalars of every
type, long and odd strings, lists, objects, dates); paths and query strings get odd ids and
filters. A fixed seed: a failure repeats. ``PORTCULLIS_FUZZ_ROUNDS=N`` runs N rounds, each with
its own seed (the suite runs one).
"""

from __future__ import annotations

import json
import os
import random
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

TOKEN = RunningGateway.ADMIN_TOKEN
STRINGS = [
    "", "u", "AU", "AU-NSW", "KR", "XX", "au-nsw", "government", "private", "admin", "auditor",
    "ünïcødé ✓ 漢字", "\u0000", "a b", "x" * 201, "y" * 600, "2030-01-01", "2001-01-01T00:00:00Z",
    "2030-06-30T17:00:00+10:00", "tomorrow", "null", "0", "-1", "1e9", "' OR 1=1 --",
    "../../etc/passwd", "%00", "team:x", "a" * 70,
]  # fmt: skip
KEY_FIELDS = [
    "user", "jurisdiction", "sector", "team", "roles", "tags", "tenant", "description",
    "requests_per_minute", "tokens_per_minute", "expires_at", "models", "key", "key_id",
    "unknown_x",
]  # fmt: skip
LIMIT_FIELDS = ["requests_per_minute", "tokens_per_minute", "expires_at", "models", "user"]
EXPORT_FILTERS = [
    "format", "since", "until", "jurisdiction", "user", "team", "decision", "rule", "backend",
    "kind", "limit",
]  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 5, 60, 10**9, 10**10, 2**63, -(2**63)])
    if kind == 3:
        return rng.choice([0.5, -1.5, 1e308, float(rng.randrange(100))])
    if kind in (4, 5):
        return rng.choice(STRINGS)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(STRINGS + KEY_FIELDS): _value(rng, depth + 1) for _ in range(3)}


def _key_body(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"user": "fz", "jurisdiction": "AU", "sector": "private"}
    for _ in range(rng.randrange(1, 5)):
        body[rng.choice(KEY_FIELDS)] = _value(rng)
    return body


def _query(rng: random.Random) -> str:
    q = {rng.choice(EXPORT_FILTERS): rng.choice([*STRINGS, "csv", "jsonl", "syslog", "key"])}
    if rng.random() < 0.5:
        q["format"] = rng.choice(["csv", "jsonl", "syslog", "xml"])
    return urllib.parse.urlencode(q)


@pytest.fixture
def gateway(
    database_url: str, tmp_path: Path, upstream_server: FakeUpstream
) -> Iterator[RunningGateway]:
    settings = Settings.model_validate(
        {
            "data_dir": str(tmp_path),
            "database": {"url": database_url},
            "admin": {"token_file": str(write_admin_token(tmp_path)), "token_env": None},
            "backends": [
                {
                    "id": "b",
                    "base_url": upstream_server.base_url,
                    "models": ["gpt-test"],
                    "operator": "openai",
                    "model_family": "gpt",
                    "model_origin": "US",
                    "hosting_country": "US",
                }
            ],
        }
    )
    gw = RunningGateway(settings, Components(policy=FakeDecider(), pii_disabled=True)).start()
    yield gw
    gw.stop()


def _check(status: int, body: Any, what: str) -> None:
    assert status < 500, f"{what}: {status} {body}"
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), (what, body)
        assert isinstance(body["error"].get("code"), str), (what, body)


@pytest.mark.parametrize("round_", range(int(os.environ.get("PORTCULLIS_FUZZ_ROUNDS", "1"))))
def test_random_admin_calls_get_a_clear_answer_never_a_500(
    gateway: RunningGateway, round_: int
) -> None:
    rng = random.Random(4_000 + round_)
    gw = gateway
    made: list[str] = []
    for _ in range(200):
        op = rng.randrange(8)
        if op in (0, 1):
            body = _key_body(rng)
            before = len(gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"])
            status, _, answer = gw.request("POST", "/admin/keys", body, token=TOKEN)
            _check(status, answer, f"create {json.dumps(body)[:300]}")
            after = len(gw.request("GET", "/admin/keys", token=TOKEN)[2]["data"])
            if status == 201:
                made.append(answer["key_id"])
                assert after == before + 1
            else:
                assert after == before, "a refused key request created a key"
        elif op == 2:
            key_id = rng.choice([*made[-5:], "000000000000", "x" * 40, "%2e%2e", "a b"])
            body = {rng.choice(LIMIT_FIELDS): _value(rng) for _ in range(rng.randrange(1, 3))}
            path = "/admin/keys/" + urllib.parse.quote(key_id)
            status, _, answer = gw.request("PATCH", path, body, token=TOKEN)
            _check(status, answer, f"limits {path} {json.dumps(body)[:300]}")
        elif op == 3:
            raw = rng.choice([b"", b"{", b"[]", b"\xff\xfe", b'{"user": "\\ud800"}', b"null"])
            status, _, answer = gw.request(
                rng.choice(["POST", "PATCH"]),
                "/admin/keys" + ("/" + made[-1] if made and rng.random() < 0.5 else ""),
                raw=raw,
                token=TOKEN,
            )
            _check(status, answer, f"raw {raw!r}")
        elif op == 4:
            q = _query(rng)
            status, _, answer = gw.request("GET", f"/admin/audit/export?{q}", token=TOKEN)
            _check(status, answer, f"export {q}")
        elif op == 5:
            q = urllib.parse.urlencode({"include_revoked": rng.choice(STRINGS)})
            status, _, answer = gw.request("GET", f"/admin/keys?{q}", token=TOKEN)
            _check(status, answer, f"list {q}")
        elif op == 6:
            key_id = rng.choice([*made[-3:], "000000000000", "%00", "k" * 300])
            path = "/admin/keys/" + urllib.parse.quote(key_id)
            status, _, answer = gw.request("DELETE", path, token=TOKEN)
            _check(status, answer, f"revoke {path}")
        else:
            key_id = rng.choice([*made[-3:], "000000000000", "%2e%2e", "k" * 300])
            path = "/admin/keys/" + urllib.parse.quote(key_id) + "/rotate"
            body = rng.choice([None, {"grace_seconds": _value(rng)}, _value(rng)])
            if body is None:
                status, _, answer = gw.request("POST", path, token=TOKEN)
            else:
                status, _, answer = gw.request("POST", path, body, token=TOKEN)
            _check(status, answer, f"rotate {path} {json.dumps(body)[:300]}")
            if status == 201:
                made.append(answer["key_id"])
    assert made, "no valid key request in the round: the generator drifted"
