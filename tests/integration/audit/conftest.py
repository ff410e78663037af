"""Audit integration fixtures: a fresh audit schema per test on SQLite and on real PostgreSQL."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.db import create_tables, open_engine
from audit.schema import metadata
from audit.sink import DatabaseAuditSink

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = open_engine(database_url)
    async with eng.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await create_tables(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "signing.key"


@pytest.fixture
def signer(key_file: Path) -> Signer:
    return Signer.from_file(key_file)


@pytest.fixture
def cp_dir(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "checkpoints"


@pytest.fixture
async def sink(
    engine: AsyncEngine, signer: Signer, cp_dir: Path
) -> AsyncIterator[DatabaseAuditSink]:
    s = DatabaseAuditSink(
        engine, signer, cp_dir, deadline_s=5.0, checkpoint_interval_s=3600, owns_engine=False
    )
    await s.start()
    yield s
    await s.close()


def event(i: int, **over: Any) -> dict[str, Any]:
    """A realistic event for request ``i``; jurisdictions, users and decisions vary with i."""
    jur = ("AU", "AU-NSW", "KR", "US-TX", "IT")[i % 5]
    allow = i % 3 != 0
    ev: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "ts": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i % 1000000:06d}Z",
        "endpoint": "chat",
        "principal": {
            "key_id": f"k{i % 7}",
            "user": f"user{i % 11}",
            "team": f"team{i % 4}",
            "tenant": ("acme", "globex")[i % 2],
            "jurisdiction": jur,
            "country": jur[:2],
            "subdivision": jur if "-" in jur else None,
            "sector": "government",
            "roles": ["user"],
            "tags": [],
        },
        "model": "deepseek-chat",
        "backend": {
            "id": ("ds-hosted", "ds-syd")[i % 2],
            "operator": "deepseek",
            "hosting_country": "AU",
            "self_hosted": bool(i % 2),
        }
        if allow
        else None,
        "decision": {
            "allow": allow,
            "permitted_backends": ["ds-syd"] if allow else [],
            "rule_ids": ["base.allow"] if allow else ["au.gov.hosted_deepseek"],
            "denying_rule_ids": [] if allow else ["au.gov.hosted_deepseek"],
            "citation_ids": [],
            "obligations": {"retention_class": "default"},
        },
        "bundle_revision": "rev-1",
        "config_hash": "c0ffee",
        "decision_input": {
            "version": "1",
            "phase": "final",
            "now": "2026-11-29T00:00:00Z",
            "principal": {"user": f"user{i % 11}", "jurisdiction": jur},
            "request": {
                "endpoint": "chat",
                "model": "deepseek-chat",
                "stream": False,
                "tools": False,
            },
            "backends": [{"id": "ds-syd"}, {"id": "ds-hosted"}],
            "pii": {"entities": {"PERSON": i % 3}},
            "deployment": {},
        },
        "pii": {"counts": {"PERSON": i % 3}, "actions": {"PERSON": {"pseudonymise": i % 3}}},
        "usage": {"prompt_tokens": i % 100, "completion_tokens": 7},
        "latency_ms": {"total": 12.5, "upstream": 10.0},
        "status": 200 if allow else 403,
        "error_code": None if allow else "policy_denied",
        "client_address": "127.0.0.1",
        "digests": {"key_id": "s1", "prompt": f"{i:064x}", "answer": None},
        "forwarded": allow,
    }
    ev.update(over)
    return ev


def month_events(first: int, month: str, n: int) -> list[dict[str, Any]]:
    """Events ``first`` .. ``first + n - 1`` (:func:`event`) dated in ``month`` (``2026-10``)."""
    out = []
    for i in range(first, first + n):
        e = event(i)
        e["ts"] = f"{month}-{1 + i % 27:02d}T10:00:00.{i:06d}Z"
        out.append(e)
    return out


async def write_events(url: str, key: Path, events: list[dict[str, Any]]) -> None:
    """Each event's intent and outcome, through a sink of its own on ``url``."""
    sink = DatabaseAuditSink(
        open_engine(url), Signer.from_file(key), key.parent / "cp", checkpoint_interval_s=3600
    )
    await sink.start()
    try:
        for e in events:
            await sink.intent(e)
            await sink.complete(e)
    finally:
        await sink.close()


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return env


PYTHON = sys.executable
