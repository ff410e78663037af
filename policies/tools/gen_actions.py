"""Regenerate ``policies/data/actions.json`` from the research file ``deepseek-actions.yaml``.

Run by hand when the research file changes (``python policies/tools/gen_actions.py PATH``); the
JSON it writes is the reviewed source of truth the Rego pack reads. Every derivation rule lives
here and is documented in ``docs/policy.md`` (sector mapping, binding kinds, date estimates).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

# Reference scope -> principal sectors (gateway/principal.py SECTORS). "*" = every sector.
SCOPE_SECTORS: dict[str, tuple[str, ...]] = {
    "national_public": ("*",),
    "government_devices": ("government", "defence"),
    "government_networks": ("government", "defence"),
    "government_staff_official_use": ("government", "defence"),
    "critical_infrastructure": ("critical_infrastructure",),
    "public_schools": ("education",),
    "state_owned_enterprises": ("state_owned_enterprise",),
    "government_endowed_foundations": ("government_foundation",),
    "contractors": ("contractor", "defence_contractor"),
    "military_personnel": ("defence",),
    "legislature": ("legislature",),
}
# Kinds that restrict (a ban, an order, a block, a statute); everything else advises.
BINDING_KINDS = {
    "public_sector_ban",
    "data_protection_order",
    "app_store_suspension",
    "network_block",
    "statute",
}
WARN_KINDS = {
    "guidance",
    "advisory",
    "public_warning",
    "statutory_warning",
    "public_warning_and_investigation",
    "dsa_notice_to_app_stores",
    "request_to_intermediaries",
    "corrective_recommendation",
}
# Targets that reach the operator's hosted service (the gateway is an API client of it).
HOSTED_TARGETS = {
    "hosted_service_web",
    "hosted_service_api",
    "mobile_app",
    "app_store_distribution",
    "personal_data_processing",
    "all_products_and_services",
    "official_data_input",
}
SUBJECTS: dict[str, dict[str, Any]] = {
    "DeepSeek": {"operator": "deepseek", "model_family": "deepseek", "name": "DeepSeek"},
    "OpenAI ChatGPT": {"operator": "openai", "model_family": None, "name": "OpenAI ChatGPT"},
    # Not DeepSeek-specific: any operator's hosted AI service ("*"), never self-hosted weights.
    "AI tools incl. ChatGPT and DeepSeek": {
        "operator": "*",
        "model_family": None,
        "name": "hosted AI tools (ChatGPT, DeepSeek and others)",
    },
    "TikTok": {"operator": "bytedance", "model_family": None, "name": "TikTok"},
    "Xiaohongshu (RedNote)": {
        "operator": "xiaohongshu",
        "model_family": None,
        "name": "Xiaohongshu (RedNote)",
    },
}
# Dates the file leaves open: the earliest date the sources allow (cautious), marked estimated.
ESTIMATED_FROM: dict[str, str] = {
    "it-garante-2025-05-isp-letter": "2025-05-14",
    "it-agcm-2025-06": "2025-06-01",
    "au-qld-2025-02": "2025-02-01",
    "au-wa-2025-02": "2025-02-01",
    "kr-moe-2025-02": "2025-02-01",
    "be-parliament-2025-02": "2025-02-01",
    "lu-cnpd-2025": "2025-01-01",
    "jp-31-tottori-2025-02": "2025-02-01",
    "us-doc-2025-03": "2025-03-01",
    "us-sd-2025-03": "2025-03-01",
    "us-tn-2025-03": "2025-03-01",
    "us-la-2025": "2025-09-29",
    "us-tiktok-gov-devices-2022-12": "2022-12-01",
    "au-tiktok-2023-04": "2023-04-01",
    "us-bill-no-deepseek-gov-devices-2025-02": "2025-02-06",
    "us-bill-no-adversarial-ai-2025-06-25": "2025-06-25",
}
WEIGHTS_COVERED = {"covered", "covered_by_wording", "covered_by_advice"}


def _effect(a: dict[str, Any]) -> str:
    status = a["status"]
    if status == "unverified":
        return "warn"
    if status == "proposed":
        return "info"
    if a["kind"] in BINDING_KINDS and status in ("in_force", "lifted"):
        return "deny"
    if a["kind"] in WARN_KINDS:
        return "warn"
    return "info"


def _authority_instrument(a: dict[str, Any]) -> tuple[str, str]:
    auth = a["authority"].strip()
    m = re.match(r"^(.*?)\s*\((.+)\)\s*$", auth)
    # A parenthesis holds the instrument ("PSPF Direction 001-2025"), unless it is only the
    # authority's acronym ("(PIPC)"), which stays part of the authority.
    if m and not re.fullmatch(r"[A-Z][A-Za-z/&.-]{1,9}", m.group(2)):
        return m.group(1), m.group(2)
    return auth, a["kind"].replace("_", " ")


def _weights(a: dict[str, Any]) -> str:
    ow = a.get("open_weights") or "not_addressed"
    if ow in WEIGHTS_COVERED or (
        ow == "not_addressed" and "open_weights_self_hosted" in a["restricted_targets"]
    ):
        return "covered"
    return ow if ow in ("ambiguous", "not_addressed") else "not_addressed"


def _messages(
    a: dict[str, Any], authority: str, instrument: str, effect: str, frm: str | None
) -> dict[str, str]:
    subj = SUBJECTS[a["subject"]]["name"]
    when = f"in force since {frm}" if frm else "date not established"
    if frm and a["effective_date"] is None:
        when = f"in force since {frm} at the earliest; {a.get('date_basis')}"
    if a["status"] == "lifted":
        when = f"from {frm} until {a.get('lifted_date')} (lifted)"
    who = ", ".join(s.replace("_", " ") for s in a["scope"])
    j = a["jurisdiction"]
    verb = {
        "deny": "restricts",
        "warn": "warns about"
        if a["status"] != "unverified"
        else "reportedly restricts (unverified)",
        "info": "has acted on",
    }[effect]
    head = f"{authority} ({instrument}, {when}) {verb} {subj}"
    return {
        "hosted": f"{head}'s hosted service for {who} in {j}.",
        "weights": f"{head}, including self-hosted weights, for {who} in {j}.",
        "weights_cautious": (
            f"{head} for {who} in {j}; the text is ambiguous about self-hosted weights and this "
            "deployment's cautious default (self_hosted_stance=cautious) denies them."
        ),
        "weights_permitted": (
            f"{head} for {who} in {j}; the text is ambiguous about self-hosted weights and this "
            "deployment's stance (self_hosted_stance=permit) allows them."
        ),
    }


def convert(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in doc["actions"]:
        j = a["jurisdiction"]
        country, _, sub = j.partition("-")
        sectors = sorted({s for sc in a["scope"] for s in SCOPE_SECTORS[sc]})
        if "*" in sectors:
            sectors = ["*"]
        authority, instrument = _authority_instrument(a)
        frm = a["effective_date"] or ESTIMATED_FROM.get(a["id"])
        effect = _effect(a)
        targets = a["restricted_targets"]
        out.append(
            {
                "id": a["id"],
                "package": country.lower(),
                "jurisdiction": j,
                "country": country,
                "subdivision": j if sub else None,
                "subject": SUBJECTS[a["subject"]],
                "authority": authority,
                "instrument": instrument,
                "kind": a["kind"],
                "status": a["status"],
                "effect": effect,
                "effective_date": a["effective_date"],
                "effective_from": frm,
                "date_estimated": a["effective_date"] is None and frm is not None,
                "date_basis": a.get("date_basis"),
                "lifted_on": a.get("lifted_date"),
                "scope": a["scope"],
                "sectors": sectors,
                "targets": targets,
                "hosted": bool(HOSTED_TARGETS.intersection(targets)),
                "weights": _weights(a),
                "confidence": a["confidence"],
                "url": a["source_url"],
                "reason": a.get("reason"),
                "messages": _messages(a, authority, instrument, effect, frm),
            }
        )
    return out


def main(argv: list[str]) -> None:
    src = Path(argv[1]) if len(argv) > 1 else Path("/work/shared/reference/deepseek-actions.yaml")
    doc = yaml.safe_load(src.read_text())
    dest = Path(__file__).resolve().parent.parent / "data" / "actions.json"
    dest.write_text(json.dumps(convert(doc), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main(sys.argv)
