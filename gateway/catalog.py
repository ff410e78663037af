"""Resolving the model a caller asked for to the backends that could serve it.

Every way of naming a model is folded to one canonical name before policy sees the request:
surrounding whitespace and case are ignored, aliases map to their model, and a
``<provider>/<model>`` prefix (``deepseek/deepseek-chat``) may only *narrow* the candidates to
backends of that operator or id, never widen them. Anything else unusual (``@``, ``#``, ``?``,
``\\``, control characters, two slashes) is not a model we serve: 404, nothing forwarded.
The candidate list then goes to policy, and only the backends the decision permits are used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config.backends import BackendSpec
from gateway.errors import Cause, GatewayError
from gateway.principal import Principal

__all__ = ["Catalog", "Resolution", "key_allows"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._:-]{0,127}\Z")


@dataclass(frozen=True, slots=True)
class Resolution:
    model: str  # canonical name as configured
    candidates: tuple[BackendSpec, ...]  # in priority order


class Catalog:
    def __init__(self, backends: Sequence[BackendSpec]) -> None:
        self.backends = tuple(sorted(backends, key=lambda b: (b.priority, b.id)))
        self.by_id = {b.id: b for b in self.backends}
        # Extra body keys some backend accepts (vLLM's ``ignore_eos``, ``top_k``...): accepted
        # at validation, then sent only to the backends that declared them.
        self.passthrough = frozenset(p for b in self.backends for p in b.passthrough_params)
        # How long a request's in-flight slot is held at most (gateway.limiter): the longest
        # any backend may take (its total deadline, tried twice over: retries and fallbacks),
        # plus a minute
        self.lease_s = 2 * max((b.timeouts.total_s for b in self.backends), default=600.0) + 60.0
        # folded name -> canonical name -> backends
        self._names: dict[str, tuple[str, list[BackendSpec]]] = {}
        for b in self.backends:
            for m in b.models:
                self._add(m, m, b)
            for alias, target in b.aliases.items():
                self._add(alias, target, b)

    def _add(self, name: str, canonical: str, backend: BackendSpec) -> None:
        key = name.casefold()
        current = self._names.get(key)
        if current is None:
            self._names[key] = (canonical, [backend])
        elif backend not in current[1]:
            current[1].append(backend)

    def model_names(self) -> list[str]:
        return sorted({canonical for canonical, _ in self._names.values()})

    def canonical(self, requested: str) -> str | None:
        """The configured name a model name or alias stands for (case-folded, no prefix)."""
        name = requested.strip().casefold()
        hit = self._names.get(name) if _NAME.match(name) else None
        return hit[0] if hit else None

    def backends_for(self, canonical: str) -> tuple[BackendSpec, ...]:
        hit = self._names.get(canonical.casefold())
        return tuple(hit[1]) if hit else ()

    def resolve(self, requested: str, endpoint: str) -> Resolution:
        name = requested.strip().casefold()
        narrow: str | None = None
        if name.count("/") == 1:
            narrow, name = name.split("/")
        if not _NAME.match(name) or (narrow is not None and not _NAME.match(narrow)):
            raise self.not_found()
        hit = self._names.get(name)
        if hit is None:
            raise self.not_found()
        canonical, backends = hit
        chosen = [
            b
            for b in backends
            if endpoint in b.endpoints and (narrow is None or narrow in (b.operator, b.id))
        ]
        if not chosen:
            raise self.not_found()
        return Resolution(canonical, tuple(sorted(chosen, key=lambda b: (b.priority, b.id))))

    @staticmethod
    def not_found() -> GatewayError:
        # The requested string is not echoed: it may carry anything.
        return GatewayError(
            Cause.MODEL_NOT_FOUND,
            "The model does not exist or is not served for this endpoint. "
            "GET /v1/models lists the models your key may use.",
            param="model",
        )


def key_allows(catalog: Catalog, principal: Principal, canonical: str) -> bool:
    """Whether the key's model allow-list (if it has one) holds ``canonical`` — by its name or
    by an alias of it."""
    if principal.models is None:
        return True
    if canonical.casefold() in principal.models:
        return True
    return any(catalog.canonical(m) == canonical for m in principal.models)
