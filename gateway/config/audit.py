"""Settings of the audit trail (owned by the audit component). Every default works unconfigured:
the gateway's database (SQLite under ``data_dir`` by default), a signing key and checkpoint files
created under ``data_dir/audit/`` on first start."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from gateway.config.base import Strict

__all__ = ["AuditSettings"]


class AuditSettings(Strict):
    # Write-ahead: an intent not durable within this deadline fails the request (503).
    intent_deadline_ms: int = Field(1000, ge=1, le=60000)
    record_client_address: bool = True
    # Keep a keyed digest of each personal-data value found in a request (never the value), so
    # that `portcullis audit subject` can answer whether a person's data was sent, and where.
    record_subject_digests: bool = True
    # A separate audit database; default: the gateway's own database.
    database_url: str | None = None
    max_batch: int = Field(2000, ge=1, le=50000)
    # A completion record waits up to this long for the next write-ahead intent to share its
    # durable commit (0: commit at once). Only its durability is delayed, never an answer.
    completion_linger_ms: int = Field(50, ge=0, le=1000)
    checkpoint_interval_s: float = Field(60.0, ge=0.1, le=86400.0)
    # Ed25519 private key (PEM). Default: data_dir/audit/signing.key, created 0600 on first start.
    signing_key_file: Path | None = None
    # Checkpoints are also written here, outside the database. Default: data_dir/audit/checkpoints.
    checkpoint_dir: Path | None = None
    # Recovery marks an intent without completion incomplete when its writer process is gone
    # (same host) or when it is older than this grace period (writers on other hosts).
    recovery_grace_s: int = Field(600, ge=1)
    recovery_window_h: int = Field(24 * 31, ge=1)
    # Retention classes (named by the policy obligation ``retention_class``): days to keep the
    # event body; ``None`` keeps it for ever (legal hold). Purged entries keep their leaf hashes.
    retention_days: dict[str, int | None] = Field(
        default_factory=lambda: {"default": 400, "short": 30, "long": 2555, "legal_hold": None}
    )
    default_retention_class: str = "default"
    # Per-tenant class for events whose decision names none.
    tenant_retention: dict[str, str] = Field(default_factory=dict)
    # How often each gateway process runs the purge; 0 turns the periodic purge off.
    purge_interval_s: float = Field(6 * 3600.0, ge=0)
    # Roles that may export or read captured content.
    export_roles: tuple[str, ...] = ("admin", "auditor")
    # Encrypted content capture (AES-GCM, one key per tenant) when a decision obliges it.
    content_capture: bool = False

    @model_validator(mode="after")
    def _classes_known(self) -> AuditSettings:
        names = set(self.retention_days)
        if "captures_erased" in names:  # audit.retention.CAPTURES: the purge reports it beside
            raise ValueError("captures_erased is the purge's count of captures, not a class name")
        if self.default_retention_class not in names:
            raise ValueError("default_retention_class is not a key of retention_days")
        unknown = set(self.tenant_retention.values()) - names
        if unknown:
            raise ValueError("tenant_retention names a class not in retention_days")
        return self
