"""Reloading the backend catalogue and the limits without a restart (``kill -HUP``,
``POST /admin/config/reload``).

The configuration file is read and validated again, exactly as at start. Four sections are
applied to the running gateway: ``backends`` — models, aliases, base URLs, credentials, the facts
policy decides on, timeouts, priorities —, ``limits`` (the default rate and token limits of keys
without their own, the limiter's deadline), ``requests`` (the bounds every request is checked
against) and ``system_prompts`` (the texts of the prompts policy may ask for). Nothing else: a
change to another section (server, database, keys, PII, audit, policy settings, ...) needs a
restart, and the reload says which sections those are instead of
half-applying them. A file that does not load changes nothing.

Order, so that the record never lags what is served: the new configuration is validated, then
an audit entry of kind ``config`` (who, how, the configuration hash before and after, which
backends were added, removed or changed) is made durable, and only then is the new catalogue
swapped in. If the audit store does not take the entry, nothing changes (fail closed). Requests
already past routing finish on the backend they resolved; every later request (its policy
input, its routing, its audit record's ``config_hash``) sees the new catalogue.

With ``server.workers`` above 1, uvicorn's supervisor answers SIGHUP by restarting every worker
(each reads the file anew); the admin call would reach a single worker and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from gateway.admission import warn_if_shadowed
from gateway.catalog import Catalog
from gateway.config import ConfigError, Settings
from gateway.config.backends import BackendSpec
from gateway.config_archive import (
    archive_config,
    config_archive,
    config_document,
    document_hash,
)
from gateway.errors import Cause, GatewayError
from gateway.services import Services

__all__ = ["ReloadReport", "Reloader", "backend_credentials", "install_sighup"]

log = logging.getLogger("portcullis")

# Top-level sections a reload applies; every other one is read at start only.
RELOADABLE = ("backends", "limits", "budgets", "requests", "system_prompts")


def backend_credentials(
    backends: Iterable[BackendSpec],
) -> tuple[dict[str, str | None], frozenset[str]]:
    """Each backend's credential value, and the ids of those whose configured credential is
    missing or empty (never sent a request: it could only refuse it after the prompt left)."""
    credentials: dict[str, str | None] = {}
    unusable: set[str] = set()
    for b in backends:
        value = b.credential.resolve()
        credentials[b.id] = value.get_secret_value() if value is not None else None
        if b.credential.configured and credentials[b.id] is None:
            unusable.add(b.id)
            log.warning(
                "backend %s: its credential (%s) is missing or empty; no request is sent to it "
                "until it is set and the gateway %s",
                b.id,
                b.credential.source(),
                "restarted" if b.credential.env else "reloaded (kill -HUP)",
            )
    return credentials, frozenset(unusable)


@dataclass(frozen=True, slots=True)
class ReloadReport:
    applied: bool  # whether the running catalogue changed
    previous_config_hash: str
    config_hash: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    credentials: tuple[str, ...]  # otherwise unchanged backends whose credential value changed
    restart_required: tuple[str, ...]  # sections that differ in the file but were not applied
    sections: tuple[str, ...] = ()  # the reloadable sections that changed (applied)

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "previous_config_hash": self.previous_config_hash,
            "config_hash": self.config_hash,
            "backends": {
                "added": list(self.added),
                "removed": list(self.removed),
                "changed": list(self.changed),
                "credentials_changed": list(self.credentials),
            },
            "sections": list(self.sections),
            "restart_required": list(self.restart_required),
        }


class _StreamOptions(Protocol):
    refuses_stream_options: set[str]


def _ids(ids: tuple[str, ...]) -> str:
    """Backend ids for the audit entry's ``action`` (one identifier of at most 200 characters);
    beyond that, the counts beside it stand alone and the report and log have the ids."""
    joined = "+".join(ids)
    return joined if len(joined) <= 200 else ""


class Reloader:
    """Applies the file's ``backends`` to the running services (see the module docstring)."""

    def __init__(
        self,
        services: Services,
        load: Callable[[], Settings] | None,
        pipeline: _StreamOptions | None = None,
    ) -> None:
        self._services = services
        self._load = load
        self._pipeline = pipeline
        self._lock = asyncio.Lock()
        self.reloads = Counter(
            "portcullis_config_reloads",
            "Configuration reloads by result (applied, unchanged, invalid, unrecorded)",
            ["result"],
            registry=services.metrics.registry,
        )

    @property
    def available(self) -> bool:
        return self._load is not None

    async def reload(self, via: str, actor: str) -> ReloadReport:
        """Read the file again and apply its backends, limits and request bounds. Raises
        :class:`GatewayError`: CONFLICT (no file to read), UNPROCESSABLE (the file does not
        load), AUDIT_UNAVAILABLE."""
        if self._load is None:
            raise GatewayError(
                Cause.CONFLICT,
                "This gateway was started without a configuration file to reload from.",
            )
        async with self._lock:
            s = self._services
            running = s.settings
            try:
                fresh = self._load()
            except ConfigError as exc:
                self.reloads.labels(result="invalid").inc()
                log.error("configuration reload refused, the running one stays: %s", exc)
                raise GatewayError(
                    Cause.UNPROCESSABLE,
                    f"The configuration did not load ({exc}); the running configuration stays.",
                ) from None
            restart = tuple(
                sorted(
                    name
                    for name in type(running).model_fields
                    if name not in RELOADABLE and getattr(fresh, name) != getattr(running, name)
                )
            )
            sections = tuple(
                name for name in RELOADABLE if getattr(fresh, name) != getattr(running, name)
            )
            effective = running.model_copy(
                update={name: getattr(fresh, name) for name in RELOADABLE}
            )
            document = config_document(effective)  # serialised once: hashed, and archived
            before, after = s.config_hash, document_hash(document)
            old = {b.id: b for b in running.backends}
            new = {b.id: b for b in fresh.backends}
            added = tuple(sorted(new.keys() - old.keys()))
            removed = tuple(sorted(old.keys() - new.keys()))
            changed = tuple(sorted(i for i in new.keys() & old.keys() if new[i] != old[i]))
            # A credential file rotated under an unchanged backend: its value changed, not the
            # configuration (the hash holds no secrets), and it is applied and recorded too.
            credentials, unusable = backend_credentials(fresh.backends)
            rotated = tuple(
                sorted(
                    i
                    for i in new.keys() & old.keys()
                    if i not in changed and credentials[i] != s.upstream.credential(i)
                )
            )
            report = ReloadReport(
                after != before or bool(rotated),
                before,
                after,
                added,
                removed,
                changed,
                rotated,
                restart,
                sections,
            )
            if not report.applied:
                self.reloads.labels(result="unchanged").inc()
                self._log(report, via)
                return report
            action = {
                "via": via,
                "from": before,
                "to": after,
                "added": len(added),
                "removed": len(removed),
                "changed": len(changed),
                "added_ids": _ids(added),
                "removed_ids": _ids(removed),
                "changed_ids": _ids(changed),
                "credentials": len(rotated),
                "credentials_ids": _ids(rotated),
                "limits": "limits" in sections,
                "budgets": "budgets" in sections,
                "requests": "requests" in sections,
                "system_prompts": "system_prompts" in sections,
            }
            if "limits" in sections:  # the new defaults, and how a minute is counted
                action["requests_per_minute"] = fresh.limits.requests_per_minute
                action["tokens_per_minute"] = fresh.limits.tokens_per_minute
                action["max_parallel"] = fresh.limits.max_parallel
                action["window"] = fresh.limits.window
            event = {"actor": actor, "action": action, "config_hash": after}
            # kept before any record names it (an evidence pack shows what decided a request)
            await asyncio.to_thread(archive_config, document, config_archive(effective.data_dir))
            try:
                await self._services.audit.record("config", event)
            except Exception as exc:  # noqa: BLE001 - any store failure: nothing is applied
                self.reloads.labels(result="unrecorded").inc()
                log.error(
                    "configuration reload not applied: the audit store did not take its record "
                    "(%s)",
                    type(exc).__name__,
                )
                raise GatewayError(
                    Cause.AUDIT_UNAVAILABLE,
                    "The audit trail could not record the configuration change; nothing changed.",
                ) from None
            self._apply(effective, after, credentials, unusable, {*removed, *changed, *rotated})
            self.reloads.labels(result="applied").inc()
            self._log(report, via)
            warn_if_shadowed(effective)
            return report

    def _apply(
        self,
        effective: Settings,
        digest: str,
        credentials: dict[str, str | None],
        unusable: frozenset[str],
        stale: set[str],
    ) -> None:
        s = self._services
        catalog = Catalog(effective.backends)
        # No await from here on: a request sees the old catalogue or the new one, not a mix.
        s.limiter.set_defaults(effective.limits)
        s.upstream.set_credentials(credentials)
        s.router.unusable = unusable
        s.router.breaker.forget(stale)
        if self._pipeline is not None:
            self._pipeline.refuses_stream_options -= stale
        s.catalog = catalog
        s.settings = effective
        s.config_hash = digest
        if s.health is not None:
            s.health.reloaded()

    @staticmethod
    def _log(report: ReloadReport, via: str) -> None:
        log.info(
            "configuration reload (%s): %s, config %s -> %s; sections changed %s; backends "
            "added %s, removed %s, changed %s; credentials changed %s",
            via,
            "applied" if report.applied else "no change",
            report.previous_config_hash,
            report.config_hash,
            list(report.sections),
            list(report.added),
            list(report.removed),
            list(report.changed),
            list(report.credentials),
        )
        if report.restart_required:
            log.warning(
                "configuration sections changed in the file but not applied (they need a "
                "restart): %s",
                ", ".join(report.restart_required),
            )


def install_sighup(reloader: Reloader, policy: Any) -> bool:
    """``kill -HUP``: reload the configuration's backends (when started from a file), then the
    policy bundle (when the engine can). Unix, main thread's loop only; returns whether the
    handler was installed."""
    loop = asyncio.get_running_loop()
    policy_reload = getattr(policy, "reload", None)

    async def on_signal() -> None:
        if reloader.available:
            with contextlib.suppress(GatewayError):  # logged and counted by the reloader
                await reloader.reload("signal", "sighup")
        if policy_reload is not None:
            with contextlib.suppress(Exception):  # logged and counted by the policy client
                await policy_reload()

    try:
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(on_signal()))
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True
