"""``portcullis policy test`` and ``portcullis policy eval``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

from gateway.cli import cli
from gateway.policy.bundle import default_bundle_dir
from tests.policy_fixtures import BACKENDS, EXAMPLE_OVERLAYS


def _config(tmp_path: Path, **policy: object) -> Path:
    cfg = {
        "backends": [BACKENDS[b].model_dump(mode="json", exclude_defaults=True) for b in BACKENDS],
        "policy": {k: (str(v) if isinstance(v, Path) else v) for k, v in policy.items()},
    }
    path = tmp_path / "portcullis.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_policy_test_passes_on_the_shipped_pack_and_reports_coverage() -> None:
    res = CliRunner().invoke(
        cli, ["policy", "test", "--overlay", str(EXAMPLE_OVERLAYS / "kr_rrn_block")]
    )
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output and "line coverage" in res.output
    assert "pack/portcullis/decision.rego" in res.output


def test_policy_test_fails_nonzero_on_a_broken_expectation(tmp_path: Path) -> None:
    pack = tmp_path / "policies"
    shutil.copytree(default_bundle_dir(), pack)
    test = pack / "kr" / "kr_test.rego"
    test.write_text(
        test.read_text().replace(
            '"kr-moe-2025-02", "hosted", "deny"', '"kr-moe-2025-02", "hosted", "warn"'
        )
    )
    res = CliRunner().invoke(cli, ["policy", "test", "--bundle", str(pack)])
    assert res.exit_code == 1
    assert "FAIL" in res.output and "test_government_hosted_denied_weights_allowed" in res.output


def test_eval_explains_an_australian_government_denial(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    res = CliRunner().invoke(
        cli,
        ["-c", str(cfg), "policy", "eval", "-j", "AU", "-s", "government", "-m", "deepseek-chat"],
    )
    assert res.exit_code == 0, res.output
    assert "allow: false" in res.output
    assert "au.au-homeaffairs-2025-02-04.hosted" in res.output
    assert "PSPF Direction 001-2025" in res.output
    assert "self_hosted_stance=cautious" in res.output


def test_eval_json_with_a_date_and_stance(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    args = [
        "-c",
        str(cfg),
        "policy",
        "eval",
        "-j",
        "AU",
        "-s",
        "government",
        "-b",
        "deepseek-self",
        "-b",
        "openai",
        "--stance",
        "permit",
        "--json",
    ]
    now = json.loads(CliRunner().invoke(cli, args).output)
    assert now["decision"]["permitted_backends"] == ["deepseek-self", "openai"]
    before = json.loads(CliRunner().invoke(cli, [*args, "--at", "2025-02-03"]).output)
    assert before["decision"]["reasons"] == []
    assert before["input"]["now"] == "2025-02-03T00:00:00Z"


def test_eval_with_overlay_from_config_and_pii(tmp_path: Path) -> None:
    cfg = _config(tmp_path, overlays=[str(EXAMPLE_OVERLAYS / "kr_rrn_block")])
    res = CliRunner().invoke(
        cli,
        [
            "-c",
            str(cfg),
            "policy",
            "eval",
            "-j",
            "KR",
            "-s",
            "private",
            "-b",
            "openai",
            "--pii",
            "KR_RRN=1",
            "--json",
        ],
    )
    out = json.loads(res.output)
    assert out["decision"]["pii_actions"]["openai"] == {"*": "pseudonymise", "KR_RRN": "block"}
    assert out["input"]["phase"] == "final"


def test_eval_rejects_bad_principal_attributes(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    bad_j = CliRunner().invoke(cli, ["-c", str(cfg), "policy", "eval", "-j", "XX", "-s", "private"])
    bad_s = CliRunner().invoke(cli, ["-c", str(cfg), "policy", "eval", "-j", "AU", "-s", "pirates"])
    assert bad_j.exit_code == 2 and bad_s.exit_code == 2


def test_bundle_command_writes_an_opa_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "b.tar.gz"
    res = CliRunner().invoke(cli, ["policy", "bundle", str(dest)])
    assert res.exit_code == 0 and dest.stat().st_size > 1000
    assert "revision sha256:" in res.output
