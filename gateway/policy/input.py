"""Building the decision contract's input (see :mod:`gateway.policy.contract`). Never any text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.config.backends import BackendSpec
from gateway.config.policy import PolicySettings
from gateway.policy.contract import CONTRACT_VERSION
from gateway.principal import Principal
from gateway.views import backend_facts, deployment_view, principal_view

__all__ = ["build_policy_input", "rfc3339", "what_if_input"]


_last: tuple[int, str] = (0, "")


def rfc3339(when: datetime) -> str:
    """Whole seconds, UTC, ``Z`` (the text of the last second asked for is kept)."""
    global _last
    second = int(when.timestamp() // 1)
    if _last[0] != second:
        _last = (second, when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last[1]


def build_policy_input(
    *,
    principal: Principal,
    endpoint: str,
    model: str,
    stream: bool,
    tools: bool,
    backends: Sequence[BackendSpec],
    pii_counts: Mapping[str, int] | None,
    now: datetime,
    settings: PolicySettings,
    api: str | None = None,
    marking: str | None = None,
) -> dict[str, Any]:
    """``endpoint`` is what the backend is asked (``chat`` for a Responses request, which is
    served as chat); ``api`` the API the caller used (``responses``), the endpoint if omitted;
    ``marking`` the highest classification marking in the request (gateway.markings)."""
    return {
        "version": CONTRACT_VERSION,
        "phase": "route" if pii_counts is None else "final",
        "now": rfc3339(now),
        "principal": principal_view(principal),
        "request": {
            "endpoint": endpoint,
            "api": api or endpoint,
            "model": model,
            "stream": stream,
            "tools": tools,
            "marking": marking,
        },
        "backends": [backend_facts(b) for b in backends],
        "pii": None if pii_counts is None else {"entities": dict(pii_counts)},
        "deployment": deployment_view(settings.self_hosted_stance),
    }


def what_if_input(
    principal: Principal,
    backends: Sequence[BackendSpec],
    model: str | None,
    pii_counts: Mapping[str, int] | None,
    now: datetime,
    settings: PolicySettings,
    marking: str | None = None,
) -> dict[str, Any]:
    """The input of a what-if question (``portcullis policy eval``, ``POST /admin/policy/eval``):
    a plain chat request for ``model`` (else the first candidate's first model)."""
    return build_policy_input(
        principal=principal,
        endpoint="chat",
        model=model or backends[0].models[0],
        stream=False,
        tools=False,
        backends=backends,
        pii_counts=pii_counts,
        now=now,
        settings=settings,
        marking=marking,
    )
