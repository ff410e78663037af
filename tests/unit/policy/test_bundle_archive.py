"""Policy bundles kept by revision (gateway.policy.bundle.archive_bundle): what decided a past
period can be shown in an evidence pack."""

from __future__ import annotations

import tarfile
from pathlib import Path

from gateway.policy.bundle import archive_bundle, archived_name, load_bundle


def test_a_bundle_is_kept_once_under_its_revision(tmp_path: Path) -> None:
    bundle = load_bundle()
    kept = archive_bundle(bundle, tmp_path / "bundles")
    assert kept is not None and kept.name == archived_name(bundle.revision)
    assert kept.name.startswith("sha256-") and ":" not in kept.name
    with tarfile.open(kept) as tar:
        assert bundle.revision.encode() in tar.extractfile("/.manifest").read()  # type: ignore[union-attr]
    before = kept.stat().st_mtime_ns
    assert archive_bundle(bundle, tmp_path / "bundles") == kept  # a revision names its content
    assert kept.stat().st_mtime_ns == before
    assert [p.name for p in (tmp_path / "bundles").iterdir()] == [kept.name]  # no .tmp left


def test_an_archive_that_cannot_be_written_is_not_an_error(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    assert archive_bundle(load_bundle(), blocked / "bundles") is None
