"""The evidence route's clean-up of build folders a dead process left (gateway.http.evidence_admin)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.http.evidence_admin import sweep


def test_folders_older_than_an_hour_go_and_fresh_ones_stay(tmp_path: Path) -> None:
    old, fresh, other = tmp_path / "evidence-old", tmp_path / "evidence-new", tmp_path / "keep"
    for d in (old, fresh, other):
        d.mkdir()
        (d / "trail.jsonl").write_text("x")
    hour_ago = time.time() - 3700
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    assert sweep(tmp_path) == 1
    assert not old.exists() and fresh.exists() and other.exists()
