"""The audit trail end to end: real gateway, real policy and PII, real audit sink on SQLite.

Requests (served, denied, failed) leave records that `portcullis audit verify` accepts; an
auditor's export through the admin API sees only its jurisdiction's rows and no content; a
replay under an edited bundle reports the decisions that would change.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from click.testing import CliRunner

from audit.formats import parse_otlp
from gateway.cli import cli
from gateway.config import Settings
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECRET_EMAIL = "ada.lovelace@example.org"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, Path, dict]]:
    tmp = tmp_path_factory.mktemp("audit")
    cfg = deepseek_pair(tmp, upstream_server)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = RunningGateway(Settings.model_validate(cfg)).start()
    keys = {
        "au_gov": gw.create_key(user="au-official", jurisdiction="AU", sector="government"),
        "kr_gov": gw.create_key(user="kr-official", jurisdiction="KR", sector="government"),
        "us_dev": gw.create_key(user="us-dev", jurisdiction="US-CA", sector="private"),
        "au_auditor": gw.create_key(
            user="au-auditor", jurisdiction="AU", sector="government", roles=["auditor"]
        ),
    }
    upstream_server.reset()
    for who in ("au_gov", "kr_gov", "us_dev"):
        client = openai.OpenAI(base_url=gw.base_url, api_key=keys[who], max_retries=0)
        try:
            client.chat.completions.create(
                model="deepseek-chat",
                messages=[{"role": "user", "content": f"Please write to {SECRET_EMAIL}"}],
            )
        except openai.PermissionDeniedError:
            pass
    time.sleep(0.5)  # completion records are written after the response
    yield gw, path, keys
    gw.stop()


def run_cli(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_trail_verifies_and_detects_tampering(world: tuple[RunningGateway, Path, dict]) -> None:
    gw, path, _ = world
    code, out = run_cli(path, "audit", "verify")
    assert code == 0, out
    import sqlite3

    db = sqlite3.connect(gw.settings.data_dir / "portcullis.db")
    table_cols = [r[1] for r in db.execute("PRAGMA table_info(audit_log)")]
    body_col = next(c for c in ("event", "body", "payload", "canonical") if c in table_cols)
    row = db.execute(
        f"SELECT seq, {body_col} FROM audit_log ORDER BY seq LIMIT 1 OFFSET 1"
    ).fetchone()
    edited = row[1].replace('"status":', '"status_":') if isinstance(row[1], str) else row[1]
    db.execute(f"UPDATE audit_log SET {body_col} = ? WHERE seq = ?", (edited, row[0]))
    db.commit()
    try:
        code, out = run_cli(path, "audit", "verify")
        assert code != 0
    finally:
        db.execute(f"UPDATE audit_log SET {body_col} = ? WHERE seq = ?", (row[1], row[0]))
        db.commit()
        db.close()


def test_auditor_export_is_scoped_and_contentless(world: tuple[RunningGateway, Path, dict]) -> None:
    gw, _, keys = world
    status, _, body = gw.request(
        "GET", "/admin/audit/export?format=jsonl", token=keys["au_auditor"], parse=False
    )
    assert status == 200
    rows = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
    text = body.decode()
    users = {json.dumps(r) for r in rows}
    assert any("au-official" in u for u in users)
    assert not any("kr-official" in u or "us-dev" in u for u in users)
    assert SECRET_EMAIL not in text and keys["au_gov"] not in text
    status, headers, body = gw.request(
        "GET", "/admin/audit/export?format=csv", token=RunningGateway.ADMIN_TOKEN, parse=False
    )
    assert status == 200 and "kr-official" in body.decode() and SECRET_EMAIL not in body.decode()
    # a download, never rendered or sniffed by a browser (reliability reference E-1)
    assert headers["content-type"].startswith("text/csv")
    assert headers["content-disposition"].startswith('attachment; filename="portcullis-audit-')
    assert headers["content-disposition"].endswith('.csv"')
    assert headers["x-content-type-options"] == "nosniff"
    # OpenTelemetry logs: the same rows, scoped alike, one OTLP/JSON request per line
    status, headers, body = gw.request(
        "GET", "/admin/audit/export?format=otlp", token=keys["au_auditor"], parse=False
    )
    assert status == 200 and headers["content-disposition"].endswith('.otlp.jsonl"')
    otlp = [r["event"] for r in parse_otlp(body)]
    assert otlp[: len(rows)] == [r["event"] for r in rows]  # later: the reads' own entries
    assert not any("kr-official" in json.dumps(e) for e in otlp)


def test_export_refused_without_the_role(world: tuple[RunningGateway, Path, dict]) -> None:
    gw, _, keys = world
    status, _, body = gw.request("GET", "/admin/audit/export", token=keys["us_dev"])
    assert status == 403 and body["error"]["code"] == "forbidden"


def test_replay_reports_what_another_bundle_would_change(
    world: tuple[RunningGateway, Path, dict], tmp_path: Path
) -> None:
    _, path, _ = world
    edited = tmp_path / "bundle"
    shutil.copytree(ROOT / "policies", edited)
    actions_file = edited / "data" / "actions.json"
    actions = [a for a in json.loads(actions_file.read_text()) if a["country"] != "AU"]
    actions_file.write_text(json.dumps(actions))
    code, out = run_cli(path, "policy", "replay", "--bundle", str(edited), "--json")
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["newly_allowed"] >= 1 and report["newly_denied"] == 0
    assert "AU" in json.dumps(report)
