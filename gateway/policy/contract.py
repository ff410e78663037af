"""The policy decision contract, version 1 (schema: ``policies/schema/``).

Input (built by the gateway, never containing text or PII values)::

    {
      "version": "1",
      "phase": "route" | "final",     # route: before detection (pii is null); final: with counts
      "now": "2026-11-29T03:40:00Z",  # RFC 3339, UTC, Z suffix
      "principal": {key_id, user, team, tenant, jurisdiction, country, subdivision, sector,
                    roles[], tags[]},
      "request": {endpoint: "chat"|"completions"|"embeddings"|"models", api, model,
                  stream: bool, tools: bool, marking: null | classification level},
      "backends": [{id, operator, model_family, model_origin, hosting_country, hosting_region,
                    self_hosted, accredited_to, retention{days, trains_on_inputs,
                    zero_data_retention, terms_url}, models[]}],
      "pii": null | {"entities": {"PERSON": 2, "KR_RRN": 1}},
      "deployment": {"self_hosted_stance": "cautious" | "permit", ...}
    }

Output::

    {
      "version": "1",
      "allow": bool,
      "permitted_backends": ["id", ...],          # subset of input backends, any order
      "pii_actions": {"<backend id>": {"<ENTITY>": action, "*": action}},
      "reasons": [{rule, effect: "deny"|"warn"|"info", message, backends: [ids] | null,
                   citation: null | {authority, instrument, date, url, confidence, action_id}}],
      "obligations": {"content_capture": bool, "retention_class": str,
                      "system_prompts": [prompt id, ...],    # optional
                      "redact_new_pii": bool,                # optional
                      "strict_pii": bool},                   # optional
      "bundle_revision": str
    }

An action is one of allow, redact, mask, hash, pseudonymise, block. ``"*"`` is the default for
entity types a backend's map does not name. Anything else (missing keys, unknown action, a
permitted backend that was not a candidate) is a malformed decision and fails closed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.config.prompts import PROMPT_ID

__all__ = [
    "CONTRACT_VERSION",
    "Citation",
    "Decision",
    "MalformedDecision",
    "PiiAction",
    "PolicyEngine",
    "Reason",
    "parse_decision",
]

CONTRACT_VERSION = "1"
_PROMPT_ID = re.compile(PROMPT_ID)


class PiiAction(enum.StrEnum):
    ALLOW = "allow"
    REDACT = "redact"
    MASK = "mask"
    HASH = "hash"
    PSEUDONYMISE = "pseudonymise"
    BLOCK = "block"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


# "The strictest PII action wins": block > redact > hash > mask > pseudonymise > allow.
# pseudonymise is reversible (the value comes back in the answer) so it is the least strict
# of the protective actions; redact keeps nothing.
_STRICTNESS = {
    PiiAction.ALLOW: 0,
    PiiAction.PSEUDONYMISE: 1,
    PiiAction.MASK: 2,
    PiiAction.HASH: 3,
    PiiAction.REDACT: 4,
    PiiAction.BLOCK: 5,
}


class MalformedDecision(ValueError):
    """The engine answered something that is not a version-1 decision."""


@dataclass(frozen=True, slots=True)
class Citation:
    authority: str
    instrument: str
    date: str | None
    url: str | None
    confidence: str | None = None
    action_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": self.authority,
            "instrument": self.instrument,
            "date": self.date,
            "url": self.url,
            "confidence": self.confidence,
            "action_id": self.action_id,
        }


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    effect: str  # deny | warn | info
    message: str
    backends: tuple[str, ...] | None = None
    citation: Citation | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "effect": self.effect,
            "message": self.message,
            "backends": list(self.backends) if self.backends is not None else None,
            "citation": self.citation.to_json() if self.citation else None,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    permitted_backends: tuple[str, ...]
    pii_actions: Mapping[str, Mapping[str, PiiAction]]
    reasons: tuple[Reason, ...]
    obligations: Mapping[str, Any]
    bundle_revision: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Ids of the configured system prompts to add to the request (``obligations.system_prompts``;
    # gateway.prompts). Kept out of ``obligations``, whose members are flat scalars.
    system_prompts: tuple[str, ...] = ()

    def action_for(self, backend: str, entity: str) -> PiiAction:
        per = self.pii_actions.get(backend, {})
        return per.get(entity) or per.get("*") or PiiAction.PSEUDONYMISE

    def entities_needed(self, backends: tuple[str, ...] | None = None) -> frozenset[str] | None:
        """Entity types whose action is not ``allow`` on some of ``backends``.

        ``None`` means every type (some backend's default ``*`` is not allow).
        """
        needed: set[str] = set()
        for b in backends if backends is not None else self.permitted_backends:
            per = self.pii_actions.get(b, {})
            if per.get("*", PiiAction.PSEUDONYMISE) is not PiiAction.ALLOW:
                return None
            needed.update(k for k, a in per.items() if k != "*" and a is not PiiAction.ALLOW)
        return frozenset(needed)

    @property
    def redact_new_pii(self) -> bool:
        """The obligation to replace, not only count, personal data in the answer that the
        prompt did not hold (the streamed answer screened as it goes; gateway.pii.restore)."""
        return self.obligations.get("redact_new_pii") is True

    @property
    def strict_pii(self) -> bool:
        """The obligation to look for personal data as strictly as the detector can: names in
        lower case (the name model reads the whole text, not windows around capitals) and
        weak identifiers inside code (gateway.pii.engine.Analyzer.analyze)."""
        return self.obligations.get("strict_pii") is True

    @property
    def denials(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.effect == "deny")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CONTRACT_VERSION,
            "allow": self.allow,
            "permitted_backends": list(self.permitted_backends),
            "pii_actions": {
                b: {e: a.value for e, a in m.items()} for b, m in self.pii_actions.items()
            },
            "reasons": [r.to_json() for r in self.reasons],
            "obligations": {
                **self.obligations,
                **({"system_prompts": list(self.system_prompts)} if self.system_prompts else {}),
            },
            "bundle_revision": self.bundle_revision,
        }


class PolicyEngine(Protocol):
    """Evaluates the bundle. Implementations: embedded Rego, OPA over REST, a fake for tests.

    ``evaluate`` returns the engine's raw output document; :func:`parse_decision` validates it.
    Engines raise any exception on failure; the gateway's policy client turns errors, timeouts
    and malformed answers into ``policy_unavailable`` (fail closed).
    """

    @property
    def revision(self) -> str: ...

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


def _str_list(v: Any, what: str) -> tuple[str, ...]:
    if not isinstance(v, list | tuple | set | frozenset) or not all(isinstance(x, str) for x in v):
        raise MalformedDecision(f"{what} must be a list of strings")
    return tuple(sorted(v)) if isinstance(v, set | frozenset) else tuple(v)


def _citation(v: Any) -> Citation | None:
    if v is None:
        return None
    if not isinstance(v, Mapping) or not isinstance(v.get("authority"), str):
        raise MalformedDecision("citation must be an object with an authority")
    return Citation(
        authority=v["authority"],
        instrument=str(v.get("instrument") or ""),
        date=v.get("date"),
        url=v.get("url"),
        confidence=v.get("confidence"),
        action_id=v.get("action_id"),
    )


def parse_decision(raw: Any, candidates: tuple[str, ...]) -> Decision:
    """Validate an engine's output against the contract; raise :class:`MalformedDecision`."""
    if not isinstance(raw, Mapping):
        raise MalformedDecision("decision is not an object")
    if str(raw.get("version")) != CONTRACT_VERSION:
        raise MalformedDecision("decision version is not 1")
    allow = raw.get("allow")
    if not isinstance(allow, bool):
        raise MalformedDecision("allow must be a boolean")
    permitted = _str_list(raw.get("permitted_backends"), "permitted_backends")
    unknown = set(permitted) - set(candidates)
    if unknown:
        raise MalformedDecision("permitted_backends names a backend that was not a candidate")
    if allow and not permitted:
        raise MalformedDecision("allow with no permitted backend")
    actions_raw = raw.get("pii_actions")
    if not isinstance(actions_raw, Mapping):
        raise MalformedDecision("pii_actions must be an object")
    actions: dict[str, dict[str, PiiAction]] = {}
    for backend, per in actions_raw.items():
        if not isinstance(per, Mapping):
            raise MalformedDecision("pii_actions values must be objects")
        try:
            actions[backend] = {str(e): PiiAction(a) for e, a in per.items()}
        except ValueError as exc:
            raise MalformedDecision("unknown PII action") from exc
        if "*" not in actions[backend]:
            raise MalformedDecision("every pii_actions map needs a '*' default")
    reasons_raw = raw.get("reasons")
    if not isinstance(reasons_raw, list | tuple | set | frozenset):
        raise MalformedDecision("reasons must be a list")
    reasons: list[Reason] = []
    for r in reasons_raw:
        if not isinstance(r, Mapping) or not isinstance(r.get("rule"), str):
            raise MalformedDecision("each reason needs a rule id")
        effect = r.get("effect", "deny")
        if effect not in ("deny", "warn", "info"):
            raise MalformedDecision("reason effect must be deny, warn or info")
        backends = r.get("backends")
        reasons.append(
            Reason(
                rule=r["rule"],
                effect=effect,
                message=str(r.get("message") or r["rule"]),
                backends=_str_list(backends, "reason.backends") if backends is not None else None,
                citation=_citation(r.get("citation")),
            )
        )
    reasons.sort(key=lambda x: (x.effect != "deny", x.rule, x.backends or ()))
    obligations = raw.get("obligations") or {}
    if not isinstance(obligations, Mapping):
        raise MalformedDecision("obligations must be an object")
    obligations = dict(obligations)
    prompts = obligations.pop("system_prompts", None) or []
    if not isinstance(prompts, list) or not all(
        isinstance(p, str) and _PROMPT_ID.fullmatch(p) for p in prompts
    ):
        raise MalformedDecision("obligations.system_prompts must be a list of prompt ids")
    for flag in ("redact_new_pii", "strict_pii"):
        if not isinstance(obligations.get(flag, False), bool):
            # a policy that means to protect data and says it wrongly must not pass as "no"
            raise MalformedDecision(f"obligations.{flag} must be a boolean")
    revision = raw.get("bundle_revision")
    if not isinstance(revision, str) or not revision:
        raise MalformedDecision("bundle_revision missing")
    if not allow and not any(r.effect == "deny" for r in reasons):
        raise MalformedDecision("a denial must carry at least one deny reason")
    return Decision(
        allow=allow,
        permitted_backends=permitted,
        pii_actions=actions,
        reasons=tuple(reasons),
        obligations=obligations,
        bundle_revision=revision,
        raw=raw,
        system_prompts=tuple(dict.fromkeys(prompts)),
    )
