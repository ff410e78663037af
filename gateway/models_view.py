"""``GET /v1/models`` and ``GET /v1/models/{model}``: the models this caller may use, as
decided by policy and narrowed by the key's own model list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.catalog import key_allows
from gateway.policy.input import build_policy_input
from gateway.principal import Principal
from gateway.services import Services

__all__ = ["permitted_model", "permitted_models"]


async def permitted_models(services: Services, principal: Principal) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for name in services.catalog.model_names():
        if not key_allows(services.catalog, principal, name):
            continue  # not on the key's own list
        entry = await _entry(services, principal, name, now)
        if entry is not None:
            out.append(entry)
    return out


async def permitted_model(
    services: Services, principal: Principal, requested: str
) -> dict[str, Any] | None:
    """The model object for ``requested`` (a model name or alias), or ``None`` when it is not
    served or policy permits this caller no backend for it (the two look the same)."""
    name = services.catalog.canonical(requested)
    if name is None or not key_allows(services.catalog, principal, name):
        return None
    return await _entry(services, principal, name, datetime.now(UTC))


async def _entry(
    services: Services, principal: Principal, name: str, now: datetime
) -> dict[str, Any] | None:
    backends = services.catalog.backends_for(name)
    policy_input = build_policy_input(
        principal=principal,
        endpoint="models",
        model=name,
        stream=False,
        tools=False,
        backends=list(backends),
        pii_counts=None,
        now=now,
        settings=services.settings.policy,
    )
    decision = await services.policy.decide(policy_input, tuple(b.id for b in backends))
    usable = set(decision.permitted_backends) - services.router.unusable
    if not (decision.allow and usable):
        return None
    owners = sorted({b.operator for b in backends if b.id in usable})
    return {"id": name, "object": "model", "created": 0, "owned_by": ",".join(owners)}
