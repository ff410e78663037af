"""Loading the bundle: revision as a content hash, overlays, the OPA bundle writer."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from gateway.policy.bundle import BundleError, default_bundle_dir, load_bundle, write_opa_bundle
from tests.policy_fixtures import EXAMPLE_OVERLAYS


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "policies"
    shutil.copytree(default_bundle_dir(), dest)
    return dest


def test_revision_is_stable_for_the_same_content(pack_copy: Path) -> None:
    assert load_bundle(pack_copy).revision == load_bundle(default_bundle_dir()).revision


def test_revision_changes_with_rules_data_or_overlays(pack_copy: Path) -> None:
    base = load_bundle(pack_copy).revision
    with_overlay = load_bundle(pack_copy, (EXAMPLE_OVERLAYS / "kr_rrn_block",)).revision
    assert with_overlay != base
    facts = pack_copy / "data" / "regions.json"
    facts.write_text(facts.read_text().replace('"SE"', '"SE", "XK"'))
    assert load_bundle(pack_copy).revision != base


def test_editing_a_test_does_not_change_the_revision(pack_copy: Path) -> None:
    base = load_bundle(pack_copy).revision
    test = pack_copy / "au" / "au_test.rego"
    test.write_text(test.read_text() + "\n# a comment\n")
    assert load_bundle(pack_copy).revision == base


def test_examples_and_tools_are_not_part_of_the_pack() -> None:
    b = load_bundle()
    names = [n for n, _ in b.modules]
    assert not any("overlays" in n or "tools" in n for n in names)
    assert "pack/portcullis/decision.rego" in names
    assert len([n for n in names if n.count("/") == 2 and n.startswith("pack/")]) >= 17


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("package portcullis.jurisdiction.xx\nimport rego.v1\n", "portcullis.overlay"),
        ("import rego.v1\n", "no package"),
    ],
)
def test_overlay_must_live_under_its_namespace(tmp_path: Path, text: str, message: str) -> None:
    ov = tmp_path / "mine"
    ov.mkdir()
    (ov / "rules.rego").write_text(text)
    with pytest.raises(BundleError, match=message):
        load_bundle(None, (ov,))


def test_missing_directories_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError):
        load_bundle(None, (tmp_path / "nope",))


def test_opa_bundle_carries_the_same_modules_data_and_revision(tmp_path: Path) -> None:
    b = load_bundle(None, (EXAMPLE_OVERLAYS / "legal_self_hosted",))
    dest = tmp_path / "bundle.tar.gz"
    write_opa_bundle(b, dest)
    with tarfile.open(fileobj=io.BytesIO(dest.read_bytes()), mode="r:gz") as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("/.manifest"))  # type: ignore[arg-type]
        data = json.load(tar.extractfile("/data.json"))  # type: ignore[arg-type]
    assert manifest["revision"] == b.revision
    assert data["bundle"]["revision"] == b.revision
    assert data["facts"]["actions"] == b.data["facts"]["actions"]
    assert "/overlay/legal_self_hosted/legal.rego" in names
    assert not any(n.endswith("_test.rego") for n in names)
