"""Classification markings end to end: the real gateway, the embedded policy engine with the
shipped pack, the fake upstream. A document pasted with its PROTECTED banner goes only to the
backend accredited to that level; with none left, it is refused and nothing leaves; the record
says which marking was read."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config import Settings
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

DOC = "PROTECTED\n\nCabinet submission: budget measures for 2027."


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("markings")
    cfg = deepseek_pair(tmp, upstream_server)
    cfg["backends"][1]["accredited_to"] = "protected"  # the self-hosted one, in AU-NSW
    cfg["policy"] = {"self_hosted_stance": "permit"}
    cfg["pii"] = {"enabled": False}
    gateway = RunningGateway(Settings.model_validate(cfg)).start()
    yield gateway, tmp
    gateway.stop()


def _ask(gw: RunningGateway, key: str, text: str) -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    return sdk.chat.completions.with_raw_response.create(
        model="deepseek-chat", messages=[{"role": "user", "content": f"Summarise:\n{text}"}]
    )


def _record(tmp: Path, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(tmp / "portcullis.db") as db:
            rows = db.execute(
                "SELECT body FROM audit_log WHERE kind = 'complete' AND request_id = ?", (rid,)
            ).fetchall()
        if rows or time.monotonic() > deadline:
            return json.loads(rows[0][0])  # type: ignore[no-any-return]
        time.sleep(0.05)


def test_a_protected_document_goes_only_to_the_backend_accredited_for_it(
    gw: Any, upstream: FakeUpstream
) -> None:
    gateway, tmp = gw
    key = gateway.create_key(user="analyst", jurisdiction="AU-NSW", sector="private")
    # unmarked: the hosted service comes first (priority 10)
    raw = _ask(gateway, key, "A plain paragraph.")
    assert _record(tmp, raw.headers["x-request-id"])["backend"]["id"] == "deepseek-hosted"
    raw = _ask(gateway, key, DOC)
    record = _record(tmp, raw.headers["x-request-id"])
    assert record["backend"]["id"] == "deepseek-self"
    assert record["backend"]["accredited_to"] == "protected"
    assert record["decision_input"]["request"]["marking"] == "protected"
    assert "portcullis.marking.above_accreditation" in record["decision"]["rule_ids"]


def test_above_every_accreditation_it_is_refused_and_nothing_leaves(
    gw: Any, upstream: FakeUpstream
) -> None:
    gateway, tmp = gw
    key = gateway.create_key(user="analyst2", jurisdiction="AU-NSW", sector="private")
    with pytest.raises(openai.PermissionDeniedError) as err:
        _ask(gateway, key, "Subject: sitrep [SEC=SECRET]\nTroop movements.")
    body = err.value.body
    assert body["code"] == "policy_denied"  # type: ignore[index]
    assert "SECRET" in body["message"]  # type: ignore[index]
    assert upstream.received == []
    record = _record(tmp, err.value.response.headers["x-request-id"])
    assert record["decision_input"]["request"]["marking"] == "secret"
    assert record["decision"]["denying_rule_ids"] == ["portcullis.marking.above_accreditation"]
