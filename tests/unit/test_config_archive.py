"""The configuration's document (:mod:`gateway.config_archive`): what the audit records'
``config_hash`` is the hash of, kept once per hash, with no password and no webhook secret in
it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.config_archive import (
    REDACTED,
    _redact_url,
    archive_config,
    archived_config,
    config_archive,
    config_document,
    config_hash,
)

BACKEND = {
    "id": "deepseek-self",
    "protocol": "openai",
    "base_url": "http://10.0.0.5:8000/v1",
    "models": ["deepseek-chat"],
    "operator": "self",
    "model_family": "deepseek",
    "model_origin": "CN",
    "hosting_country": "AU",
    "self_hosted": True,
}


def _settings(tmp_path: Path, **more: Any) -> Settings:
    return Settings.model_validate({"data_dir": str(tmp_path), "backends": [BACKEND], **more})


SECRETS = {
    "database": {"url": "postgresql+asyncpg://app:hunter2-db@db.internal:5432/portcullis"},
    "redis": {"url": "redis://:hunter2-redis@cache.internal:6379/0"},
    "audit": {"database_url": "postgresql+asyncpg://audit:hunter2-audit@db/a?sslmode=require"},
    "budgets": {
        "webhooks": [{"url": "https://hooks.slack.com/services/T000/B000/hunter2hook"}],
    },
}


def test_the_document_holds_no_password_and_no_webhook_secret(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **SECRETS)
    document = config_document(settings)
    assert b"hunter2" not in document
    doc = json.loads(document)
    assert (
        doc["database"]["url"] == f"postgresql+asyncpg://app:{REDACTED}@db.internal:5432/portcullis"
    )
    assert doc["redis"]["url"] == f"redis://:{REDACTED}@cache.internal:6379/0"
    # what is not secret stays: the server, the database, TLS
    assert (
        doc["audit"]["database_url"]
        == f"postgresql+asyncpg://audit:{REDACTED}@db/a?sslmode=require"
    )
    assert doc["budgets"]["webhooks"][0]["url"] == f"https://hooks.slack.com/{REDACTED}"
    assert doc["backends"][0]["base_url"] == "http://10.0.0.5:8000/v1"
    # canonical JSON: one spelling, so its hash is the records' config_hash
    assert document == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert config_hash(settings) == hashlib.sha256(document).hexdigest()[:16]


def test_a_changed_password_is_the_same_configuration_a_changed_fact_is_not(
    tmp_path: Path,
) -> None:
    one = _settings(tmp_path, **SECRETS)
    rotated = _settings(
        tmp_path, **{**SECRETS, "redis": {"url": "redis://:other@cache.internal:6379/0"}}
    )
    moved = _settings(tmp_path, **SECRETS, **{"backends": [{**BACKEND, "hosting_country": "SG"}]})
    assert config_hash(one) == config_hash(rotated)
    assert config_hash(one) != config_hash(moved)


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("https://user:pw@h.example/p?x=1", f"https://user:{REDACTED}@h.example/p?x=1"),
        ("https://h.example/p?token=abc&region=eu", f"https://h.example/p?token={REDACTED}&region=eu"),
        ("https://h.example/p?api_key=abc", f"https://h.example/p?api_key={REDACTED}"),
        ("https://h.example/p?sig=abc&Password=x",
         f"https://h.example/p?sig={REDACTED}&Password={REDACTED}"),
        ("http://127.0.0.1:8181", "http://127.0.0.1:8181"),
        ("sqlite+aiosqlite:////var/lib/p.db", "sqlite+aiosqlite:////var/lib/p.db"),
        ("not a url", "not a url"),
        ("https://u:p@[::1", REDACTED),  # unparseable, and holds credentials: all of it
    ],
)  # fmt: skip
def test_urls_lose_their_passwords_and_secret_parameters(url: str, want: str) -> None:
    assert _redact_url(url) == want


def test_a_document_is_kept_once_by_its_hash_and_found_by_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    directory = config_archive(tmp_path)
    kept = archive_config(config_document(settings), directory)
    assert kept is not None and kept.name == f"config-{config_hash(settings)}.json"
    assert kept.read_bytes() == config_document(settings)
    mtime = kept.stat().st_mtime_ns
    assert (
        archive_config(config_document(settings), directory) == kept
        and kept.stat().st_mtime_ns == mtime
    )
    assert archived_config(tmp_path, config_hash(settings)) == kept
    assert archived_config(tmp_path, "0" * 16) is None
    assert archived_config(tmp_path, "../../etc/passwd") is None  # a hash, nothing else
    assert [p.name for p in directory.iterdir()] == [kept.name]  # no temporary file left


def test_a_document_that_cannot_be_kept_is_said_and_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder goes")
    assert archive_config(config_document(_settings(tmp_path)), blocker) is None
    assert "not archived" in caplog.text
