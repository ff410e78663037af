"""``portcullis serve`` before it hands over to uvicorn (uvicorn itself replaced here)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import cli


@pytest.mark.parametrize(
    ("workers", "redis", "warned"),
    [(4, None, True), (4, "redis://h:6379/0", False), (1, None, False)],
)
def test_several_workers_without_redis_warn_of_limits_and_revocations(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    workers: int,
    redis: str | None,
    warned: bool,
) -> None:
    import os

    import uvicorn

    monkeypatch.setattr(os, "environ", dict(os.environ))  # serve sets variables for uvicorn
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n" + (f"redis: {{url: '{redis}'}}\n" if redis else ""))
    with caplog.at_level(logging.WARNING, logger="portcullis"):
        result = CliRunner().invoke(
            cli, ["-c", str(cfg), "serve", "--workers", str(workers)], catch_exceptions=False
        )
    assert result.exit_code == 0 and calls[0]["workers"] == workers
    messages = [r.getMessage() for r in caplog.records]
    assert any("times the configured rate" in m for m in messages) is warned
    assert any("announce revocations" in m for m in messages) is warned


@pytest.mark.parametrize(
    ("server", "headers", "allowed"),
    [
        ("", True, "127.0.0.1/32"),
        (
            "server: {trusted_proxies: ['10.1.2.3', '10.20.0.0/16']}\n",
            True,
            "10.1.2.3/32,10.20.0.0/16",
        ),
        ("server: {trusted_proxies: []}\n", False, None),
        ("server: {trust_forwarded_for: true}\n", True, "*"),
    ],
)
def test_whose_forwarded_for_is_believed_goes_to_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str, headers: bool, allowed: str | None
) -> None:
    """The client's address (a key's networks, admin.networks, the audit record) is the one a
    trusted proxy forwarded: server.trusted_proxies (127.0.0.1 by default), or everybody with
    trust_forwarded_for, or nobody."""
    import os

    import uvicorn

    monkeypatch.setattr(os, "environ", dict(os.environ))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n" + server)
    result = CliRunner().invoke(cli, ["-c", str(cfg), "serve"], catch_exceptions=False)
    assert result.exit_code == 0
    assert calls[0]["proxy_headers"] is headers and calls[0]["forwarded_allow_ips"] == allowed
