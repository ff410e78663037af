"""``GET /v1/models``: the models this caller may use, as decided by policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.policy.input import build_policy_input
from gateway.principal import Principal
from gateway.services import Services

__all__ = ["permitted_models"]


async def permitted_models(services: Services, principal: Principal) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for name in services.catalog.model_names():
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
        if decision.allow and usable:
            owners = sorted({b.operator for b in backends if b.id in usable})
            out.append({"id": name, "object": "model", "created": 0, "owned_by": ",".join(owners)})
    return out
