"""Configuration: one YAML file plus ``PORTCULLIS_*`` environment overrides.

Settings are built once (:func:`load_settings`) and passed in; nothing reads the environment at
import time. Unknown keys anywhere are an error naming the key; the service refuses to start.

Environment overrides use ``__`` for nesting: ``PORTCULLIS_SERVER__PORT=9000``,
``PORTCULLIS_DATABASE__URL=postgresql+asyncpg://...``, ``PORTCULLIS_POLICY__ENGINE=opa``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, StringConstraints, ValidationError, model_validator

from gateway.config.admin import AdminSettings
from gateway.config.audit import AuditSettings
from gateway.config.backends import BackendSpec
from gateway.config.base import Strict
from gateway.config.core import (
    BudgetSettings,
    DatabaseSettings,
    KeySettings,
    LimitSettings,
    RedisSettings,
    RequestLimits,
    ServerSettings,
    TracingSettings,
)
from gateway.config.pii import PiiSettings
from gateway.config.policy import PolicySettings
from gateway.config.prompts import PROMPT_ID, SystemPrompt
from gateway.config.runtime import RuntimeSettings

__all__ = ["ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "PORTCULLIS_"


class ConfigError(Exception):
    """The configuration is invalid; the message names the key."""


class Settings(Strict):
    data_dir: Path = Path(".portcullis")
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    keys: KeySettings = KeySettings()
    admin: AdminSettings = AdminSettings()
    limits: LimitSettings = LimitSettings()
    budgets: BudgetSettings = BudgetSettings()
    requests: RequestLimits = RequestLimits()
    backends: tuple[BackendSpec, ...] = Field(default_factory=tuple)
    policy: PolicySettings = PolicySettings()
    pii: PiiSettings = PiiSettings()
    audit: AuditSettings = AuditSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    tracing: TracingSettings = TracingSettings()
    # Prompt id -> the system prompt policy may ask the gateway to add (gateway.config.prompts).
    system_prompts: dict[Annotated[str, StringConstraints(pattern=PROMPT_ID)], SystemPrompt] = (
        Field(default_factory=dict)
    )

    @model_validator(mode="after")
    def _unique_backends(self) -> Settings:
        ids = [b.id for b in self.backends]
        if len(ids) != len(set(ids)):
            raise ValueError("backends: ids must be unique")
        # Every name a client may send (a model or an alias, case-folded) must mean one model
        # across the catalogue: otherwise a request for it could reach a backend that serves
        # another model, under a name that backend does not know.
        meaning: dict[str, tuple[str, str]] = {}
        for b in self.backends:
            names = [(m, m) for m in b.models] + list(b.aliases.items())
            for name, target in names:
                seen = meaning.setdefault(name.casefold(), (target, b.id))
                if seen[0] != target:
                    raise ValueError(
                        f"backends: {name!r} means {seen[0]!r} on {seen[1]} and {target!r} on "
                        f"{b.id}; a model or alias name must mean one model everywhere"
                    )
        return self

    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'portcullis.db'}"


def _secret_variables(raw: Mapping[str, Any]) -> set[str]:
    """The variables the configuration reads secrets from (the admin token's default is
    ``PORTCULLIS_ADMIN_TOKEN``): values, not overrides, whatever their prefix; and
    ``PORTCULLIS_SLOW``, the test suite's switch for its slow tier, which is no setting."""
    names = {ENV_PREFIX + "CONFIG", ENV_PREFIX + "ADMIN_TOKEN", ENV_PREFIX + "SLOW"}
    for section, key in (("admin", "token_env"), ("keys", "secret_env")):
        part = raw.get(section)
        if isinstance(part, Mapping) and isinstance(part.get(key), str):
            names.add(part[key])
    for b in raw.get("backends") or ():
        cred = b.get("credential") if isinstance(b, Mapping) else None
        if isinstance(cred, Mapping) and isinstance(cred.get("env"), str):
            names.add(cred["env"])
    admin = raw.get("admin")
    sso = admin.get("sso") if isinstance(admin, Mapping) else None
    if isinstance(sso, Mapping) and isinstance(sso.get("client_secret_env"), str):
        names.add(sso["client_secret_env"])
    budgets = raw.get("budgets")
    hooks = budgets.get("webhooks") if isinstance(budgets, Mapping) else None
    for hook in hooks if isinstance(hooks, list) else ():
        if isinstance(hook, Mapping) and isinstance(hook.get("secret_env"), str):
            names.add(hook["secret_env"])
    return names


def _env_overrides(environ: Mapping[str, str], skip: set[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in (skip or ()):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        cursor = out
        for part in path[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[path[-1]] = yaml.safe_load(value) if value else value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{loc}: {msg}")
    return "; ".join(lines)


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any), apply environment overrides, validate strictly."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError("configuration file must hold a mapping at the top level")
        raw = loaded
    env = os.environ if environ is None else environ
    # The secret variables the file names, and any an override names (admin.token_env, ...).
    skip = _secret_variables(raw) | _secret_variables(_env_overrides(env))
    _merge(raw, _env_overrides(env, skip))
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
