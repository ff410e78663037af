"""What an evidence pack (:mod:`audit.evidence`) takes from the gateway: the policy bundle and
the configuration in force (its hash, the backend catalogue's facts, never a credential), the
citations the bundle names, the bundle itself and the configuration's document
(:mod:`gateway.config_archive`) as files, and where earlier bundles and documents were kept.
Shared by ``portcullis audit evidence`` and ``GET /admin/audit/evidence``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.config_archive import (
    archived_config,
    config_document,
    config_file_name,
    document_hash,
)
from gateway.policy.bundle import archived_name, cited_actions, load_bundle, write_opa_bundle

__all__ = ["BUNDLE_REVISION", "PackInputs", "archived_bundle", "bundle_archive", "pack_inputs"]


def bundle_archive(data_dir: str | Path) -> Path:
    """Where the gateway keeps every policy bundle it loaded, by revision."""
    return Path(data_dir) / "policy" / "bundles"


@dataclass(frozen=True, slots=True)
class PackInputs:
    current: dict[str, Any]
    citations: dict[str, dict[str, Any]]
    extra: dict[str, Callable[[Path], None]]
    archived: Callable[[str], Path | None]  # a bundle revision's archived file, if kept
    archived_config: Callable[[str], Path | None]  # a configuration hash's document, if kept

    def pack_args(self, whole: bool = True) -> dict[str, Any]:
        """The keyword arguments of :func:`audit.evidence.write_pack` these stand for.
        ``whole``: the reader may see the whole configuration (unscoped); a reader scoped to
        some jurisdictions gets no configuration document (it holds every jurisdiction's
        settings, and the names in ``budgets.users``), only the hashes and the catalogue."""
        return {
            "current": self.current if whole else {**self.current, "config_file": None},
            "citations": self.citations,
            "extra": self.extra
            if whole
            else {k: v for k, v in self.extra.items() if not k.startswith("config-")},
            "archived": self.archived,
            "archived_config": self.archived_config if whole else None,
        }


def pack_inputs(settings: Settings, running_hash: str | None = None) -> PackInputs:
    """The configured bundle (:class:`gateway.policy.bundle.BundleError` when it cannot be read)
    and catalogue; ``running_hash``: a running gateway's configuration hash, which a reload
    changes (default: the hash of ``settings``)."""
    bundle = load_bundle(settings.policy.bundle, settings.policy.overlays)
    document = config_document(settings)
    digest = document_hash(document)
    extra: dict[str, Callable[[Path], None]] = {
        "policy-bundle.tar.gz": lambda path: write_opa_bundle(bundle, path)
    }
    current: dict[str, Any] = {
        "bundle_revision": bundle.revision,
        "config_hash": running_hash or digest,
        "config_file": None,
        "catalogue": [b.facts() for b in settings.backends],
    }
    if running_hash in (None, digest):  # the document of the configuration in force
        current["config_file"] = config_file_name(digest)
        extra[config_file_name(digest)] = lambda path: _write_bytes(path, document)
    return PackInputs(
        current=current,
        citations=cited_actions(bundle),
        extra=extra,
        archived=lambda revision: archived_bundle(settings.data_dir, revision),
        archived_config=lambda h: archived_config(settings.data_dir, h),
    )


# What a bundle revision looks like (``gateway.policy.bundle``: sha256: and hex digits).
BUNDLE_REVISION = re.compile(r"sha256:[0-9a-f]{8,64}")


def archived_bundle(data_dir: str | Path, revision: str) -> Path | None:
    """The kept bundle of ``revision`` (``sha256:<hex>``), if there is one."""
    if not BUNDLE_REVISION.fullmatch(revision):
        return None
    path = bundle_archive(data_dir) / archived_name(revision)
    return path if path.is_file() else None


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
