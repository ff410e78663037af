"""What an evidence pack (:mod:`audit.evidence`) takes from the gateway: the policy bundle and
the configuration in force (its hash, the backend catalogue's facts, never a credential), the
citations the bundle names, and the bundle itself as a file. Shared by ``portcullis audit
evidence`` and ``GET /admin/audit/evidence``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.policy.bundle import archived_name, cited_actions, load_bundle, write_opa_bundle
from gateway.reload import config_hash

__all__ = ["PackInputs", "bundle_archive", "pack_inputs"]


def bundle_archive(data_dir: str | Path) -> Path:
    """Where the gateway keeps every policy bundle it loaded, by revision."""
    return Path(data_dir) / "policy" / "bundles"


@dataclass(frozen=True, slots=True)
class PackInputs:
    current: dict[str, Any]
    citations: dict[str, dict[str, Any]]
    extra: dict[str, Callable[[Path], None]]
    archived: Callable[[str], Path | None]  # a bundle revision's archived file, if kept

    def pack_args(self) -> dict[str, Any]:
        """The keyword arguments of :func:`audit.evidence.write_pack` these stand for."""
        return {
            "current": self.current,
            "citations": self.citations,
            "extra": self.extra,
            "archived": self.archived,
        }


def pack_inputs(settings: Settings, running_hash: str | None = None) -> PackInputs:
    """The configured bundle (:class:`gateway.policy.bundle.BundleError` when it cannot be read)
    and catalogue; ``running_hash``: a running gateway's configuration hash, which a reload
    changes (default: the hash of ``settings``)."""
    bundle = load_bundle(settings.policy.bundle, settings.policy.overlays)
    return PackInputs(
        current={
            "bundle_revision": bundle.revision,
            "config_hash": running_hash or config_hash(settings),
            "catalogue": [b.facts() for b in settings.backends],
        },
        citations=cited_actions(bundle),
        extra={"policy-bundle.tar.gz": lambda path: write_opa_bundle(bundle, path)},
        archived=lambda revision: _archived(settings.data_dir, revision),
    )


def _archived(data_dir: str | Path, revision: str) -> Path | None:
    path = bundle_archive(data_dir) / archived_name(revision)
    return path if path.is_file() else None
