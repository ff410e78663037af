"""The bundle reloads without a restart: file change (watcher), SIGHUP, or the reload method."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.config.policy import PolicySettings
from gateway.policy.bundle import default_bundle_dir
from gateway.policy.client import build_policy_client
from tests.policy_fixtures import make_input

pytestmark = pytest.mark.integration

CANDIDATES = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(default_bundle_dir(), dest)
    return dest


def _ban_private_sector_in_gb(pack: Path) -> None:
    """Edit the facts: a (fictional) action that denies DeepSeek's hosted service in GB."""
    actions_file = pack / "data" / "actions.json"
    import json

    actions = json.loads(actions_file.read_text())
    template = next(a for a in actions if a["id"] == "it-garante-2025-01-30")
    actions.append(
        {**template, "id": "gb-test-order", "package": "gb", "jurisdiction": "GB", "country": "GB"}
    )
    actions_file.write_text(json.dumps(actions))
    (pack / "gb").mkdir()
    (pack / "gb" / "gb.rego").write_text(
        "package portcullis.jurisdiction.gb\nimport rego.v1\nimport data.portcullis.lib\n"
        'reasons := lib.package_reasons("gb")\n'
    )


async def test_file_change_is_picked_up_by_the_watcher(pack: Path) -> None:
    settings = PolicySettings(bundle=pack, watch=True, watch_interval_s=0.05)
    client = await build_policy_client(settings, CollectorRegistry())
    try:
        before = client.revision
        d1 = await client.decide(make_input("GB", "private"), CANDIDATES)
        assert "deepseek-hosted" in d1.permitted_backends
        _ban_private_sector_in_gb(pack)
        for _ in range(200):
            if client.revision != before:
                break
            await asyncio.sleep(0.05)
        assert client.revision != before
        d2 = await client.decide(make_input("GB", "private"), CANDIDATES)
        assert "deepseek-hosted" not in d2.permitted_backends  # not served from the old cache
        assert d2.bundle_revision == client.revision
    finally:
        await client.close()


async def test_broken_edit_keeps_the_running_bundle(pack: Path) -> None:
    client = await build_policy_client(PolicySettings(bundle=pack), CollectorRegistry())
    try:
        before = client.revision
        (pack / "lib" / "lib.rego").write_text("package portcullis.lib\nthis is not rego\n")
        with pytest.raises(RuntimeError):  # regorus's parse error
            await client.reload()
        assert client.revision == before
        d = await client.decide(make_input("AU", "government"), CANDIDATES)
        assert d.permitted_backends == ("azure-eu", "openai")
    finally:
        await client.close()


async def test_sighup_reloads(pack: Path) -> None:
    client = await build_policy_client(PolicySettings(bundle=pack), CollectorRegistry())
    try:
        assert client.install_sighup()
        before = client.revision
        _ban_private_sector_in_gb(pack)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if client.revision != before:
                break
            await asyncio.sleep(0.02)
        assert client.revision != before
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await client.close()
