"""``portcullis check`` against real dependencies: the database before and after its migration,
the real Redis, the embedded policy engine, and backends that answer, refuse the credential,
lack it, or cannot be reached (real fake backends on 127.0.0.1). Nothing is written, no content
is sent, no secret is printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from tests.support.services import REDIS_URL
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def refusing() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    up.mode, up.error_status = "error", 401
    yield up
    up.stop()


def _backend(id_: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "base_url": url, "models": [f"m-{id_}"], "operator": "openai",
            "model_family": "gpt", "model_origin": "US", "hosting_country": "US", **extra}  # fmt: skip


def _check(cfg: Path) -> tuple[int, dict[str, Any]]:
    done = CliRunner().invoke(cli, ["-c", str(cfg), "check", "--json", "--timeout", "2"])
    return done.exit_code, json.loads(done.output)


def test_check_says_what_works_and_what_does_not_and_writes_nothing(
    tmp_path: Path, upstream: FakeUpstream, refusing: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHK_GOOD_KEY", "sk-good-credential-value")
    monkeypatch.delenv("CHK_MISSING_KEY", raising=False)
    data = tmp_path / "data"
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(data),
                "redis": {"url": REDIS_URL},
                "backends": [
                    _backend("good", upstream.base_url, credential={"env": "CHK_GOOD_KEY"}),
                    _backend("refused", refusing.base_url),
                    _backend("nocred", upstream.base_url, credential={"env": "CHK_MISSING_KEY"}),
                    _backend("gone", "http://127.0.0.1:1/v1"),
                ],
            }
        )
    )
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1 and out["ok"] is False
    assert by["configuration"]["status"] == "ok"
    assert by["database"]["status"] == "warn" and "not made yet" in by["database"]["detail"]
    assert by["redis"]["status"] == "ok" and by["policy"]["status"] == "ok"
    assert by["backend good"]["status"] == "ok" and "200" in by["backend good"]["detail"]
    assert by["backend refused"]["status"] == "fail"
    assert "401, the credential was refused" in by["backend refused"]["detail"]
    assert (
        by["backend nocred"]["status"] == "fail"
        and "CHK_MISSING_KEY" in by["backend nocred"]["detail"]
    )
    assert (
        by["backend gone"]["status"] == "fail"
        and "cannot be reached" in by["backend gone"]["detail"]
    )
    # the probe carried the credential and no content; nothing was written, nothing secret shown
    assert upstream.probes[-1]["Authorization"] == "Bearer sk-good-credential-value"
    assert upstream.received == [] and refusing.received == []
    assert not data.exists()
    assert "sk-good-credential-value" not in json.dumps(out)

    # migrated, the database is ok; with only the good backends the check passes
    assert CliRunner().invoke(cli, ["-c", str(cfg), "db", "upgrade"]).exit_code == 0
    raw = json.loads(cfg.read_text())
    raw["backends"] = raw["backends"][:1]
    cfg.write_text(json.dumps(raw))
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 0 and out["ok"] is True, out
    assert by["database"]["status"] == "ok" and "the newest" in by["database"]["detail"]
    text = CliRunner().invoke(cli, ["-c", str(cfg), "check"])
    assert text.exit_code == 0 and text.output.startswith("ok    configuration")


def test_a_database_that_does_not_answer_and_a_redis_that_is_not_there_fail(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(tmp_path / "data"),
                "database": {"url": "postgresql+asyncpg://u:hunter2@127.0.0.1:1/x"},
                "redis": {"url": "redis://127.0.0.1:1/0"},
            }
        )
    )
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1
    assert by["database"]["status"] == "fail" and "does not answer" in by["database"]["detail"]
    assert by["redis"]["status"] == "fail"
    assert "hunter2" not in json.dumps(out)  # the password is never shown
