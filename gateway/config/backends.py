"""The backend catalogue: what each backend really is.

"DeepSeek's hosted API" and "DeepSeek weights on our own accelerators in Sydney" are two
backends with different facts; policy tells them apart by these fields, never by name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway.config.base import Strict
from gateway.principal import parse_jurisdiction

__all__ = ["BackendSpec", "Credential", "Retention", "Timeouts"]

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")


class Credential(Strict):
    """Where the upstream key comes from. Never inline in the file."""

    env: str | None = None
    file: Path | None = None
    header: str = "Authorization"
    scheme: str = "Bearer"

    @model_validator(mode="after")
    def _one_source(self) -> Credential:
        if self.env and self.file:
            raise ValueError("credential: give env or file, not both")
        return self

    @property
    def configured(self) -> bool:
        """The backend expects a credential (an env var or a file is named)."""
        return bool(self.env or self.file)

    def source(self) -> str:
        """Where the credential comes from, for messages (never the value)."""
        return f"env {self.env}" if self.env else f"file {self.file}" if self.file else "none"

    def resolve(self) -> SecretStr | None:
        """The credential, or None when none is configured or the configured one is missing
        (an unset or empty variable, an absent, unreadable or empty file)."""
        if self.env:
            value = os.environ.get(self.env)
            return SecretStr(value) if value else None
        if self.file:
            try:
                value = self.file.read_text().strip()
            except OSError:
                return None
            return SecretStr(value) if value else None
        return None


class Timeouts(Strict):
    connect_s: float = Field(5.0, gt=0, le=120)
    first_byte_s: float = Field(60.0, gt=0, le=3600)
    # Longest gap between two stream chunks once the first has come (a generating model sends
    # a chunk per token or few; the wait before the first is first_byte_s).
    idle_s: float = Field(30.0, gt=0, le=3600)
    total_s: float = Field(600.0, gt=0, le=86400)
    # How long an idle pooled connection to the backend is kept for reuse. Below the backend's
    # own idle timeout (uvicorn, and so vLLM: 5 s; Node: 5 s; nginx: 75 s), or a request sent
    # just as the backend closes the connection is lost and, not being idempotent, not repeated.
    keepalive_s: float = Field(4.0, gt=0, le=300)


class Retention(Strict):
    """The operator's retention terms for data sent to this backend."""

    days: int | None = Field(None, ge=0)  # None: unknown / not stated
    trains_on_inputs: bool | None = None
    zero_data_retention: bool = False
    terms_url: str | None = None

    @field_validator("terms_url")
    @classmethod
    def _terms_url(cls, v: str | None) -> str | None:
        from audit.shapes import is_terms_url

        if v is not None and not is_terms_url(v):
            raise ValueError("terms_url: an http(s) URL without spaces (escape them as %20)")
        return v


class Price(Strict):
    """What a backend charges, in US dollars per million tokens (so: micro-dollars per token)."""

    input_per_mtok: float = Field(ge=0, le=1_000_000)
    output_per_mtok: float = Field(ge=0, le=1_000_000)


class HealthCheck(Strict):
    """Active health checks of a backend (gateway.health): ``GET base_url + path`` with the
    backend's credential every ``interval_s``; ``failures`` failed probes in a row mark it down
    (its circuit open, requests go to the next permitted backend) until a probe succeeds. A
    probe carries no content: it reads the model list."""

    path: str = "/models"
    interval_s: float = Field(30.0, ge=0.2, le=3600)
    timeout_s: float = Field(5.0, gt=0, le=60)
    failures: int = Field(2, ge=1, le=100)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not re.match(r"^/[A-Za-z0-9._~/-]*\Z", v):
            raise ValueError("health_check.path: a path under base_url, e.g. /models")
        return v


class BackendSpec(Strict):
    id: str
    protocol: Literal["openai"] = "openai"
    base_url: str
    credential: Credential = Credential()
    models: tuple[str, ...] = Field(min_length=1)
    aliases: dict[str, str] = Field(default_factory=dict)  # alias -> one of models
    upstream_model: dict[str, str] = Field(default_factory=dict)  # our name -> upstream's name
    endpoints: tuple[Literal["chat", "completions", "embeddings"], ...] = (
        "chat",
        "completions",
        "embeddings",
    )
    operator: str  # who runs it: deepseek, openai, microsoft, self, ... (lowercased)
    model_family: str  # deepseek, gpt, llama, ... (lowercased)
    model_origin: str  # ISO 3166-1 alpha-2 of who developed the weights
    hosting_country: str  # where the data is processed
    hosting_region: str | None = None  # ISO 3166-2 or a provider region, e.g. "AU-NSW", "eu-west"
    self_hosted: bool = False
    # The highest security classification this backend is cleared to process (its IRAP or
    # FedRAMP assessment, the accreditation of the site it runs in): a request marked above it
    # is denied this backend by policy (gateway.markings; docs/policy.md).
    accredited_to: Literal["official", "sensitive", "protected", "secret", "top_secret"] = (
        "official"
    )
    retention: Retention = Retention()
    # Model name (or "*" for the rest) -> its price; the audit record's usage then holds the
    # request's cost in micro-dollars (cost_microusd), from the tokens the backend reported.
    prices: dict[str, Price] = Field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    priority: int = Field(100, ge=0, le=10000)  # lower is tried first
    weight: int = Field(1, ge=1, le=1000)
    max_retries: int = Field(1, ge=0, le=5)
    circuit_failures: int = Field(5, ge=1, le=1000)
    circuit_cooldown_s: float = Field(30.0, gt=0, le=3600)
    passthrough_params: tuple[str, ...] = ()  # extra body keys this backend accepts
    # The most output tokens this backend's models give. A request asking for more
    # (max_tokens, max_completion_tokens) is sent asking for this many, instead of being
    # refused by the backend: clients such as Claude Code ask for 32,000. None: sent as asked.
    max_output_tokens: int | None = Field(None, ge=1, le=10_000_000)
    # Ask for token usage on every stream (``stream_options.include_usage``), so budgets and the
    # audit count streamed tokens; a caller that did not ask does not see it. Off for a backend
    # that refuses ``stream_options`` (Azure OpenAI API versions before 2024-09-01-preview);
    # left on, its first refusal is retried without it and it is not asked again.
    stream_usage: bool = True
    # Probe the backend between requests (None: only requests' own failures open its circuit).
    health_check: HealthCheck | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("backend id: lowercase letters, digits, '.', '_', '-'")
        return v

    @field_validator("operator", "model_family")
    @classmethod
    def _fact(cls, v: str) -> str:
        # Policy rules match these exactly ("deepseek"): "DeepSeek" or "deepseek " in a config
        # file would silently escape every rule about that operator or family (fail open).
        fact = v.strip().lower()
        if not _ID.match(fact):
            raise ValueError(
                f"{v!r}: a lowercase identifier (letters, digits, '.', '_', '-'), e.g. deepseek"
            )
        return fact

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/?#@]+(/[^\s?#]*)?\Z", v):
            raise ValueError("base_url must be http(s)://host[:port][/path], no query or userinfo")
        return v.rstrip("/")

    @field_validator("models")
    @classmethod
    def _models(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for m in v:
            if not _MODEL.match(m):
                raise ValueError(f"model name {m!r}: letters, digits, '.', '_', ':', '-'")
        return v

    @field_validator("model_origin", "hosting_country")
    @classmethod
    def _country(cls, v: str) -> str:
        country, sub = parse_jurisdiction(v)
        if sub:
            raise ValueError("use a country code here; put the subdivision in hosting_region")
        return country

    @model_validator(mode="after")
    def _aliases(self) -> BackendSpec:
        for alias, target in self.aliases.items():
            if target not in self.models:
                raise ValueError(f"alias {alias!r} points at {target!r}, not a model of {self.id}")
        if self.self_hosted and self.operator != "self":
            raise ValueError("self_hosted backends have operator 'self'")
        unpriced = set(self.prices) - {*self.models, "*"}
        if unpriced:
            raise ValueError(f"prices name {sorted(unpriced)[0]!r}, not a model of {self.id}")
        from gateway.http.validate import ROUTING_PARAMS

        routing = set(self.passthrough_params) & ROUTING_PARAMS
        if routing:
            raise ValueError(f"passthrough_params may not include routing keys: {sorted(routing)}")
        return self

    def cost_microusd(self, model: str | None, usage: Mapping[str, int]) -> int | None:
        """What a request cost on this backend, in micro-dollars, from the tokens it reported;
        None without a price for the model or without both token counts."""
        if not self.prices:
            return None
        price = self.prices.get(model or "") or self.prices.get("*")
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if price is None or prompt is None or completion is None:
            return None
        return round(prompt * price.input_per_mtok + completion * price.output_per_mtok)

    def upstream_name(self, model: str | None) -> str | None:
        """This backend's own name for ``model`` (``upstream_model``), or ``model`` itself."""
        return self.upstream_model.get(model or "", model)

    def facts(self) -> dict[str, object]:
        """The backend as the policy engine sees it (the decision contract's ``backends[]``)."""
        return {
            "id": self.id,
            "operator": self.operator,
            "model_family": self.model_family,
            "model_origin": self.model_origin,
            "hosting_country": self.hosting_country,
            "hosting_region": self.hosting_region,
            "self_hosted": self.self_hosted,
            "accredited_to": self.accredited_to,
            "retention": self.retention.model_dump(mode="json"),
            "models": list(self.models),
        }
