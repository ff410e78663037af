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
from gateway.policy.bundle import cited_actions, load_bundle, write_opa_bundle
from gateway.reload import config_hash

__all__ = ["PackInputs", "pack_inputs"]


@dataclass(frozen=True, slots=True)
class PackInputs:
    current: dict[str, Any]
    citations: dict[str, dict[str, Any]]
    extra: dict[str, Callable[[Path], None]]


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
    )
