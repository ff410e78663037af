"""Shared policy fixtures: the four example backends, principals, inputs, the scenario table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config.backends import BackendSpec
from gateway.config.policy import PolicySettings
from gateway.policy.input import build_policy_input
from gateway.principal import Principal

__all__ = [
    "ALL",
    "BACKENDS",
    "EXAMPLE_OVERLAYS",
    "OVERLAYS_DIR",
    "make_input",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_OVERLAYS = REPO / "policies" / "overlays" / "examples"
OVERLAYS_DIR = Path(__file__).resolve().parent / "overlays"

BACKENDS: dict[str, BackendSpec] = {
    "deepseek-hosted": BackendSpec(
        id="deepseek-hosted",
        base_url="https://api.deepseek.com/v1",
        models=("deepseek-chat",),
        operator="deepseek",
        model_family="deepseek",
        model_origin="CN",
        hosting_country="CN",
    ),
    "deepseek-self": BackendSpec(
        id="deepseek-self",
        base_url="http://10.0.0.5:8000/v1",
        models=("deepseek-chat",),
        operator="self",
        model_family="deepseek",
        model_origin="CN",
        hosting_country="AU",
        hosting_region="AU-NSW",
        self_hosted=True,
    ),
    "openai": BackendSpec(
        id="openai",
        base_url="https://api.openai.com/v1",
        models=("gpt-4o",),
        operator="openai",
        model_family="gpt",
        model_origin="US",
        hosting_country="US",
    ),
    "azure-eu": BackendSpec(
        id="azure-eu",
        base_url="https://example-eu.openai.azure.com/openai/v1",
        models=("gpt-4o",),
        operator="microsoft",
        model_family="gpt",
        model_origin="US",
        hosting_country="SE",
        hosting_region="eu-sweden",
    ),
}
ALL = ("azure-eu", "deepseek-hosted", "deepseek-self", "openai")


def make_input(
    jurisdiction: str,
    sector: str,
    *,
    at: str = "2026-11-29",
    stance: str = "cautious",
    team: str | None = None,
    pii: dict[str, int] | None = None,
    backends: tuple[str, ...] = ALL,
    user: str = "u1",
) -> dict[str, Any]:
    when = datetime.fromisoformat(at if "T" in at else f"{at}T12:00:00").replace(tzinfo=UTC)
    return build_policy_input(
        principal=Principal(
            key_id="key-1", user=user, jurisdiction=jurisdiction, sector=sector, team=team
        ),
        endpoint="chat",
        model="deepseek-chat",
        stream=False,
        tools=False,
        backends=[BACKENDS[b] for b in backends],
        pii_counts=pii,
        now=when,
        settings=PolicySettings(self_hosted_stance=stance),
    )
