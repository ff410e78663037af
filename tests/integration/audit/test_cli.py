"""``portcullis audit ...`` and ``portcullis policy replay`` end to end on a migrated database:
build_sink with default settings, export, verify (database and file), tamper, purge."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit.sink import build_sink
from gateway.cli import cli
from gateway.config import load_settings
from gateway.storage.migrate import upgrade
from tests.integration.audit.conftest import event

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, url: str | None) -> Path:
    cfg = tmp_path / "portcullis.yaml"
    lines = [f"data_dir: {tmp_path / 'data'}"]
    if url:
        lines += ["database:", f"  url: {url}"]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


async def _write(cfg: Path, n: int) -> None:
    settings = load_settings(cfg)
    sink = build_sink(settings.audit, settings.database_url(), settings.data_dir)
    await sink.start()
    await asyncio.gather(*(sink.intent(event(i)) for i in range(n)))
    await asyncio.gather(*(sink.complete(event(i)) for i in range(n)))
    await sink.close()  # closing checkpoint


def _run(cfg: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(cfg), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_default_settings_migrate_write_export_verify_and_detect_tampering(tmp_path: Path) -> None:
    cfg = _config(tmp_path, None)
    settings = load_settings(cfg)
    upgrade(settings.database_url())
    asyncio.run(_write(cfg, 50))
    assert (tmp_path / "data" / "audit" / "signing.key").stat().st_mode & 0o777 == 0o600
    code, out = _run(cfg, "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["entries"] == 100, out
    export = tmp_path / "out.csv"
    code, out = _run(
        cfg,
        "audit",
        "export",
        "--format",
        "csv",
        "--out",
        str(export),
        "--decision",
        "deny",
        "--since",
        "2026-11-01",
        "--until",
        "2026-12-01",
    )
    assert code == 0 and json.loads(out)["count"] == 2 * len([i for i in range(50) if i % 3 == 0])
    code, out = _run(cfg, "audit", "verify", "--file", str(export))
    assert code == 0 and out.startswith("OK"), out
    code, out = _run(cfg, "audit", "export", "--out", str(tmp_path / "x.jsonl"), "--role", "user")
    assert code != 0 and "may not export" in out
    db = sqlite3.connect(settings.database_url().split(":///", 1)[1])
    db.execute(
        "UPDATE audit_log SET body = replace(body, '\"status\":403', '\"status\":200') "
        "WHERE seq = 10"
    )
    db.commit()
    db.close()
    code, out = _run(cfg, "audit", "verify")
    assert code == 1 and "entry 10 does not match its leaf hash" in out
    code, out = _run(cfg, "audit", "purge", "--now", "2030-01-01")
    assert code == 0 and json.loads(out)["default"] > 0


def test_cli_works_on_a_migrated_postgresql_database(tmp_path: Path) -> None:
    from tests.support.services import create_pg_database, drop_pg_database

    url = create_pg_database()  # its own database: the migration must create every table
    try:
        cfg = _config(tmp_path, url)
        upgrade(url)
        asyncio.run(_write(cfg, 20))
        code, out = _run(cfg, "audit", "verify", "--json")
        report = json.loads(out)
        assert code == 0 and report["last_checkpoint"] == report["entries"] == 40, out
    finally:
        drop_pg_database(url)


def test_replay_runs_the_embedded_engine_over_stored_inputs(tmp_path: Path) -> None:
    """The real embedded engine over the shipped bundle re-decides every stored request."""
    from gateway.cli.replay import replay

    cfg = _config(tmp_path, None)
    upgrade(load_settings(cfg).database_url())
    asyncio.run(_write(cfg, 15))
    group = click.Group(commands={"replay": replay})
    root = click.Group(commands={"policy": group})

    @root.result_callback()
    def _noop(*_: object, **__: object) -> None: ...

    root.params = cli.params
    root.callback = cli.callback
    result = CliRunner().invoke(
        root,
        [
            "-c",
            str(cfg),
            "policy",
            "replay",
            "--bundle",
            str(Path(__file__).resolve().parents[3] / "policies"),
            "--since",
            "2026-11-01",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["examined"] == 15 and report["errors"] == 0
    assert sum(report["jurisdictions"].values()) == report["changed"]


@pytest.mark.parametrize("actor", ["Jane Smith", "", "a\nb"])
def test_an_actor_the_record_would_drop_is_refused_before_anything_is_done(
    tmp_path: Path, actor: str
) -> None:
    cfg = _config(tmp_path, None)
    upgrade(load_settings(cfg).database_url())
    out = tmp_path / "out.jsonl"
    code, text = _run(cfg, "audit", "export", "--out", str(out), "--actor", actor)
    assert code == 2 and "--actor" in text and not out.exists()
    code, text = _run(cfg, "audit", "shred", "--tenant", "acme", "--actor", actor)
    assert code == 2 and "--actor" in text
