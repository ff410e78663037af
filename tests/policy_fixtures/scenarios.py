"""The decision scenario table: every jurisdiction of the reference file, sub-national
principals, each sector, hosted versus self-hosted, dates around actions, lifted actions,
advisories, overlays and precedence. Used by the scenario test and the engine parity test.

Rules are written ``"<action id>:<part>"`` (expanded to ``<package>.<action id>.<part>``) or in
full for overlay and built-in rules. ``deny``/``warn``/``info`` are the exact sets of reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SCENARIOS", "Scenario", "rule_id"]

DS, SELF, OA, AZ = "deepseek-hosted", "deepseek-self", "openai", "azure-eu"
ALL = frozenset({DS, SELF, OA, AZ})
NO_DS = frozenset({SELF, OA, AZ})
NO_DEEPSEEK = frozenset({OA, AZ})
EU_INFO = ("eu-edpb-2025-02-11:hosted", "eu-edpb-chatgpt-taskforce-2023-04-13:hosted")


def rule_id(short: str) -> str:
    if ":" not in short:
        return short
    action, part = short.split(":")
    return f"{action.split('-', 1)[0]}.{action}.{part}"


@dataclass(frozen=True)
class Scenario:
    name: str
    jurisdiction: str
    sector: str
    permitted: frozenset[str]
    deny: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    info: tuple[str, ...] = ()
    at: str = "2026-11-29"
    stance: str = "cautious"
    team: str | None = None
    pii: dict[str, int] | None = None
    overlays: tuple[str, ...] = ()
    pii_actions: dict[str, dict[str, str]] | None = None
    obligations: dict[str, object] | None = None
    backends: tuple[str, ...] = field(default=(AZ, DS, SELF, OA))


S = Scenario
AU_HA = ("au-homeaffairs-2025-02-04:hosted", "au-homeaffairs-2025-02-04:weights_cautious")
KR_GOV_DENY = (
    "kr-ministries-2025-02-05:hosted",
    "kr-ministries-2025-02-06:hosted",
    "kr-moe-2025-02:hosted",
)
KR_GOV_WARN = ("kr-mois-2025-02-04:hosted", "kr-pipc-2025-04-24:hosted")
US_FED_DENY = (
    "us-disa-2025-01-28:hosted",
    "us-house-cao-2025-01-30:hosted",
    "us-nasa-2025-01-31:hosted",
    "us-nasa-2025-01-31:weights_cautious",
    "us-doc-2025-03:hosted",
    "us-doc-2025-03:weights_cautious",
    "us-ndaa26-s1532-2025-12-18:hosted",
    "us-ndaa26-s1532-2025-12-18:weights",
    "us-ndaa26-s6604-2025-12-18:hosted",
    "us-ndaa26-s6604-2025-12-18:weights_cautious",
)
US_FED_INFO = (
    "us-bill-no-deepseek-gov-devices-2025-02:hosted",
    "us-bill-no-adversarial-ai-2025-06-25:hosted",
    "us-bill-no-adversarial-ai-2025-06-25:weights",
)
NDAA_CONTRACTOR = (
    "us-ndaa26-s1532-2025-12-18:hosted",
    "us-ndaa26-s1532-2025-12-18:weights",
    "us-ndaa26-s6604-2025-12-18:hosted",
    "us-ndaa26-s6604-2025-12-18:weights_cautious",
)

SCENARIOS: tuple[Scenario, ...] = (
    # Australia (Commonwealth and states)
    S("au-gov-hosted-denied-weights-cautious", "AU", "government", NO_DEEPSEEK, deny=AU_HA),
    S(
        "au-gov-weights-permitted-by-stance",
        "AU",
        "government",
        NO_DS,
        deny=("au-homeaffairs-2025-02-04:hosted",),
        info=("au-homeaffairs-2025-02-04:weights_permitted",),
        stance="permit",
    ),
    S("au-gov-day-before-direction", "AU", "government", ALL, at="2025-02-03"),
    S("au-gov-day-of-direction", "AU", "government", NO_DEEPSEEK, deny=AU_HA, at="2025-02-04"),
    S("au-private-not-covered", "AU", "private", ALL),
    S("au-individual-not-covered", "AU", "individual", ALL),
    S("au-defence-covered-as-government", "AU", "defence", NO_DEEPSEEK, deny=AU_HA),
    S("au-education-not-covered", "AU", "education", ALL),
    S(
        "au-nsw-department-ban-first",
        "AU-NSW",
        "government",
        NO_DS,
        deny=("au-nsw-dcs-2025-01-30:hosted",),
        at="2025-01-30",
    ),
    S("au-nsw-before-any-action", "AU-NSW", "government", ALL, at="2025-01-29"),
    S(
        "au-nsw-now-state-and-commonwealth",
        "AU-NSW",
        "government",
        NO_DEEPSEEK,
        deny=("au-nsw-dcs-2025-01-30:hosted", *AU_HA),
    ),
    S(
        "au-sa-state-ban-weights-not-addressed",
        "AU-SA",
        "government",
        NO_DEEPSEEK,
        deny=("au-sa-2025-02-05:hosted", *AU_HA),
    ),
    S(
        "au-qld-estimated-start",
        "AU-QLD",
        "government",
        NO_DEEPSEEK,
        deny=("au-qld-2025-02:hosted", "au-qld-2025-02:weights_cautious"),
        at="2025-02-01",
    ),
    S("au-wa-before-february", "AU-WA", "government", ALL, at="2025-01-31"),
    S(
        "au-wa-now",
        "AU-WA",
        "government",
        NO_DEEPSEEK,
        deny=("au-wa-2025-02:hosted", "au-wa-2025-02:weights_cautious", *AU_HA),
    ),
    # South Korea
    S(
        "kr-gov-hosted-denied-weights-allowed",
        "KR",
        "government",
        NO_DS,
        deny=KR_GOV_DENY,
        warn=KR_GOV_WARN,
    ),
    S(
        "kr-gov-permit-stance-same",
        "KR",
        "government",
        NO_DS,
        deny=KR_GOV_DENY,
        warn=KR_GOV_WARN,
        stance="permit",
    ),
    S(
        "kr-private-app-suspension-in-force",
        "KR",
        "private",
        NO_DS,
        deny=("kr-pipc-2025-02-15:hosted",),
        warn=("kr-pipc-2025-04-24:hosted",),
        at="2025-04-27",
    ),
    S(
        "kr-private-suspension-lifted",
        "KR",
        "private",
        ALL,
        warn=("kr-pipc-2025-04-24:hosted",),
        at="2025-04-28",
    ),
    S("kr-private-before-suspension", "KR", "private", ALL, at="2025-02-14"),
    S(
        "kr-private-suspension-first-day",
        "KR",
        "individual",
        NO_DS,
        deny=("kr-pipc-2025-02-15:hosted",),
        at="2025-02-15",
    ),
    S(
        "kr-critical-infrastructure-khnp",
        "KR",
        "critical_infrastructure",
        NO_DS,
        deny=("kr-khnp-2025-02-01:hosted",),
        warn=("kr-pipc-2025-04-24:hosted",),
    ),
    S(
        "kr-soe-khnp-first-day",
        "KR",
        "state_owned_enterprise",
        NO_DS,
        deny=("kr-khnp-2025-02-01:hosted",),
        at="2025-02-01",
    ),
    S(
        "kr-education-moe",
        "KR",
        "education",
        NO_DS,
        deny=("kr-moe-2025-02:hosted",),
        warn=("kr-pipc-2025-04-24:hosted",),
    ),
    S(
        "kr-healthcare-only-national-warning",
        "KR",
        "healthcare",
        ALL,
        warn=("kr-pipc-2025-04-24:hosted",),
    ),
    # Taiwan
    S(
        "tw-gov-cautious",
        "TW",
        "government",
        NO_DEEPSEEK,
        deny=(
            "tw-moda-2025-01-31:hosted",
            "tw-moda-2025-01-31:weights_cautious",
            "tw-ey-2025-02-03:hosted",
            "tw-ey-2025-02-03:weights_cautious",
        ),
        warn=("tw-nsb-2025-11-16:hosted",),
    ),
    S(
        "tw-gov-permit",
        "TW",
        "government",
        NO_DS,
        deny=("tw-moda-2025-01-31:hosted", "tw-ey-2025-02-03:hosted"),
        warn=("tw-nsb-2025-11-16:hosted",),
        info=("tw-moda-2025-01-31:weights_permitted", "tw-ey-2025-02-03:weights_permitted"),
        stance="permit",
    ),
    S(
        "tw-foundation-moda-only",
        "TW",
        "government_foundation",
        NO_DEEPSEEK,
        deny=("tw-moda-2025-01-31:hosted", "tw-moda-2025-01-31:weights_cautious"),
        warn=("tw-nsb-2025-11-16:hosted",),
    ),
    S(
        "tw-private-warning-day",
        "TW",
        "private",
        ALL,
        warn=("tw-nsb-2025-11-16:hosted",),
        at="2025-11-16",
    ),
    S("tw-private-before-warning", "TW", "private", ALL, at="2025-11-15"),
    # Italy and the EU
    S(
        "it-everyone-garante",
        "IT",
        "private",
        NO_DS,
        deny=("it-garante-2025-01-30:hosted",),
        warn=("it-garante-2025-05-isp-letter:hosted",),
        info=("it-agcm-2025-06:hosted", *EU_INFO),
    ),
    S(
        "it-chatgpt-order-in-force",
        "IT",
        "private",
        frozenset({DS, SELF, AZ}),
        deny=("it-garante-chatgpt-2023-03-30:hosted",),
        at="2023-04-01",
    ),
    S(
        "it-chatgpt-order-lifted",
        "IT",
        "private",
        ALL,
        info=("eu-edpb-chatgpt-taskforce-2023-04-13:hosted",),
        at="2023-04-28",
    ),
    S(
        "it-day-before-garante",
        "IT",
        "government",
        ALL,
        info=("eu-edpb-chatgpt-taskforce-2023-04-13:hosted",),
        at="2025-01-29",
    ),
    S("se-member-state-edpb-info", "SE", "government", ALL, info=EU_INFO),
    S("no-not-a-member-state", "NO", "government", ALL),
    S(
        "de-unverified-federal-warning",
        "DE",
        "private",
        ALL,
        warn=("de-bfdi-unverified:hosted",),
        info=EU_INFO,
    ),
    S(
        "de-be-berlin-notice",
        "DE-BE",
        "private",
        ALL,
        warn=("de-bfdi-unverified:hosted", "de-be-blnbdi-2025-06-27:hosted"),
        info=EU_INFO,
    ),
    S(
        "nl-gov-civil-service-ban",
        "NL",
        "government",
        NO_DS,
        deny=("nl-bzk-2025-02-06:hosted",),
        warn=("nl-ap-2025-01-31:hosted",),
        info=EU_INFO,
    ),
    S("nl-private-warning", "NL", "private", ALL, warn=("nl-ap-2025-01-31:hosted",), info=EU_INFO),
    S(
        "cz-gov-cautious",
        "CZ",
        "government",
        NO_DEEPSEEK,
        deny=("cz-gov-2025-07-09:hosted", "cz-gov-2025-07-09:weights_cautious"),
        warn=("cz-nukib-2025-07-10:hosted",),
        info=EU_INFO,
    ),
    S(
        "cz-critical-infrastructure-warning-only",
        "CZ",
        "critical_infrastructure",
        ALL,
        warn=("cz-nukib-2025-07-10:hosted",),
        info=EU_INFO,
    ),
    S("cz-gov-before-cabinet-decision", "CZ", "government", ALL, info=EU_INFO, at="2025-07-08"),
    S(
        "be-legislature-network-block",
        "BE",
        "legislature",
        NO_DS,
        deny=("be-parliament-2025-02:hosted",),
        info=("be-apd-2025-01-30:hosted", *EU_INFO),
    ),
    S(
        "be-gov-before-circular",
        "BE",
        "government",
        NO_DS,
        deny=("be-parliament-2025-02:hosted",),
        info=("be-apd-2025-01-30:hosted", *EU_INFO),
        at="2025-11-30",
    ),
    S(
        "be-defence-after-circular",
        "BE",
        "defence",
        NO_DS,
        deny=("be-parliament-2025-02:hosted", "be-fedgov-2025-12-01:hosted"),
        info=("be-apd-2025-01-30:hosted", *EU_INFO),
    ),
    S("ie-information-request", "IE", "private", ALL, info=("ie-dpc-2025-01-29:hosted", *EU_INFO)),
    S(
        "fr-information-request",
        "FR",
        "financial",
        ALL,
        info=("fr-cnil-2025-01-30:hosted", *EU_INFO),
    ),
    S(
        "lu-warning-reaches-weights",
        "LU",
        "private",
        ALL,
        warn=("lu-cnpd-2025:hosted", "lu-cnpd-2025:weights"),
        info=EU_INFO,
    ),
    S("lt-seimas", "LT", "legislature", NO_DS, deny=("lt-seimas-2025-02-12:hosted",), info=EU_INFO),
    # Asia-Pacific and the Americas
    S(
        "in-gov-advisory-every-hosted-tool",
        "IN",
        "government",
        ALL,
        warn=("in-mof-doe-2025-01-29:hosted",),
    ),
    S("in-private-nothing", "IN", "private", ALL),
    S("ca-gov-devices", "CA", "government", NO_DS, deny=("ca-tbs-2025-02-06:hosted",)),
    S("ca-tiktok-precedent-no-llm-backend", "CA", "government", ALL, at="2024-01-01"),
    S("jp-national-guidance", "JP", "government", ALL, warn=("jp-gov-2025-02-06:hosted",)),
    S(
        "jp-24-mie",
        "JP-24",
        "government",
        NO_DS,
        deny=("jp-24-mie-2025-02-07:hosted",),
        warn=("jp-gov-2025-02-06:hosted",),
    ),
    S(
        "jp-31-tottori-estimated",
        "JP-31",
        "government",
        NO_DS,
        deny=("jp-31-tottori-2025-02:hosted",),
        at="2025-02-01",
    ),
    S("us-federal-government", "US", "government", NO_DEEPSEEK, deny=US_FED_DENY, info=US_FED_INFO),
    S(
        "us-defence-navy-guidance",
        "US",
        "defence",
        NO_DEEPSEEK,
        deny=US_FED_DENY,
        warn=("us-navy-2025-01-24:hosted", "us-navy-2025-01-24:weights"),
        info=US_FED_INFO,
    ),
    S("us-defence-contractor-ndaa", "US", "defence_contractor", NO_DEEPSEEK, deny=NDAA_CONTRACTOR),
    S("us-defence-contractor-before-ndaa", "US", "defence_contractor", ALL, at="2025-12-17"),
    S(
        "us-tx-contractor-permit",
        "US-TX",
        "contractor",
        NO_DEEPSEEK,
        deny=(
            "us-tx-2025-01-31:hosted",
            "us-ndaa26-s1532-2025-12-18:hosted",
            "us-ndaa26-s1532-2025-12-18:weights",
            "us-ndaa26-s6604-2025-12-18:hosted",
        ),
        info=("us-ndaa26-s6604-2025-12-18:weights_permitted",),
        stance="permit",
    ),
    S(
        "us-tx-gov-first-week",
        "US-TX",
        "government",
        NO_DEEPSEEK,
        deny=(
            "us-tx-2025-01-31:hosted",
            "us-disa-2025-01-28:hosted",
            "us-house-cao-2025-01-30:hosted",
            "us-nasa-2025-01-31:hosted",
            "us-nasa-2025-01-31:weights_cautious",
        ),
        at="2025-01-31",
    ),
    S(
        "us-ks-gov-statute",
        "US-KS",
        "government",
        NO_DEEPSEEK,
        deny=("us-ks-2025-04-08:hosted", "us-ks-2025-04-08:weights_cautious", *US_FED_DENY),
        info=US_FED_INFO,
    ),
    S("us-la-schools", "US-LA", "education", NO_DS, deny=("us-la-2025:hosted",)),
    S("us-la-schools-before-order", "US-LA", "education", ALL, at="2025-09-28"),
    S(
        "us-nd-unverified-warns",
        "US-ND",
        "government",
        ALL,
        warn=("us-nd-2025-unverified:hosted",),
        at="2025-01-27",
    ),
    S("us-healthcare-not-covered", "US-KS", "healthcare", ALL),
    S("gb-no-actions", "GB", "private", ALL),
    S("cn-no-actions", "CN", "individual", ALL),
    # Overlays and precedence
    S(
        "overlay-legal-team-self-hosted-only",
        "GB",
        "private",
        frozenset({SELF}),
        deny=("overlay.legal_self_hosted",),
        team="legal",
        overlays=("legal_self_hosted",),
    ),
    S(
        "overlay-legal-plus-au-cautious-denies-all",
        "AU",
        "government",
        frozenset(),
        deny=(*AU_HA, "overlay.legal_self_hosted"),
        team="legal",
        overlays=("legal_self_hosted",),
    ),
    S(
        "overlay-legal-plus-au-permit",
        "AU",
        "government",
        frozenset({SELF}),
        deny=("au-homeaffairs-2025-02-04:hosted", "overlay.legal_self_hosted"),
        info=("au-homeaffairs-2025-02-04:weights_permitted",),
        team="legal",
        stance="permit",
        overlays=("legal_self_hosted",),
    ),
    S(
        "overlay-eu-personal-data-final",
        "FR",
        "private",
        frozenset({AZ}),
        deny=("overlay.eu_personal_data",),
        info=("fr-cnil-2025-01-30:hosted", *EU_INFO),
        pii={"PERSON": 2},
        overlays=("eu_personal_data",),
    ),
    S(
        "overlay-eu-personal-data-route-phase",
        "FR",
        "private",
        ALL,
        info=("fr-cnil-2025-01-30:hosted", *EU_INFO),
        overlays=("eu_personal_data",),
    ),
    S(
        "overlay-eu-no-entities-found",
        "FR",
        "private",
        ALL,
        info=("fr-cnil-2025-01-30:hosted", *EU_INFO),
        pii={},
        overlays=("eu_personal_data",),
    ),
    S(
        "overlay-kr-rrn-block",
        "KR",
        "private",
        ALL,
        warn=("kr-pipc-2025-04-24:hosted",),
        pii={"KR_RRN": 1},
        overlays=("kr_rrn_block",),
        pii_actions={
            DS: {"*": "pseudonymise", "KR_RRN": "block"},
            SELF: {"*": "allow", "KR_RRN": "block"},
            OA: {"*": "pseudonymise", "KR_RRN": "block"},
            AZ: {"*": "pseudonymise", "KR_RRN": "block"},
        },
    ),
    S(
        "overlay-pii-strictest-wins",
        "GB",
        "private",
        ALL,
        overlays=("pii_mix",),
        pii_actions={
            AZ: {"*": "allow", "EMAIL_ADDRESS": "redact", "PERSON": "mask"},
            OA: {"*": "pseudonymise", "PERSON": "allow", "EMAIL_ADDRESS": "redact"},
            SELF: {"*": "allow", "EMAIL_ADDRESS": "redact"},
            DS: {"*": "pseudonymise", "EMAIL_ADDRESS": "redact"},
        },
    ),
    S(
        "overlay-deny-beats-jurisdiction-permit",
        "AU",
        "government",
        NO_DEEPSEEK,
        deny=("au-homeaffairs-2025-02-04:hosted", "overlay.no_weights"),
        warn=("overlay.review",),
        info=("au-homeaffairs-2025-02-04:weights_permitted",),
        stance="permit",
        overlays=("no_weights",),
        obligations={
            "content_capture": True,
            "retention_class": "extended",
            "redact_new_pii": False,
            "strict_pii": False,
        },
    ),
    S(
        "overlay-strictest-retention-class",
        "GB",
        "government",
        frozenset({DS, OA, AZ}),
        deny=("overlay.no_weights",),
        warn=("overlay.review",),
        team="legal",
        overlays=("no_weights",),
        obligations={
            "content_capture": True,
            "retention_class": "legal_hold",
            "redact_new_pii": False,
            "strict_pii": False,
        },
    ),
    S(
        "overlay-unknown-pii-action-fails-closed",
        "GB",
        "private",
        frozenset(),
        deny=("portcullis.overlay.invalid",),
        overlays=("bad_action",),
    ),
    S(
        "no-candidates-denied",
        "GB",
        "private",
        frozenset(),
        deny=("portcullis.input.no_candidates",),
        backends=(),
    ),
    S(
        "only-hosted-candidate-au-gov",
        "AU",
        "government",
        frozenset(),
        deny=("au-homeaffairs-2025-02-04:hosted",),
        backends=(DS,),
    ),
)
