"""Read-only views of long-lived objects (principals, backends, decisions), built once each.

Every request hands the policy engine and the audit trail the same few views: the caller's
principal, the candidate backends' facts, the decision. Built and normalised per request they
were most of the audit record's cost (docs/benchmarks.md); here each object's view is built on
first use, as an
:class:`audit.event.Fixed` mapping, whose normalised audit form is then computed once too.
Views hold tuples, never lists, and must not be changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from audit.event import Fixed
from gateway.config.backends import BackendSpec
from gateway.policy.contract import Decision
from gateway.principal import Principal

__all__ = ["NO_PII", "backend_facts", "decision_view", "deployment_view", "principal_view"]

S = TypeVar("S")


class _Views(Generic[S]):
    """``build(source)`` memoised by identity. The source is held with its view, so its id is
    not reused while the entry lives; the table is emptied when full (only a saving is lost)."""

    __slots__ = ("_build", "_size", "_table")

    def __init__(self, build: Callable[[S], Fixed], size: int = 4096) -> None:
        self._build = build
        self._size = size
        self._table: dict[int, tuple[S, Fixed]] = {}

    def __call__(self, source: S) -> Fixed:
        hit = self._table.get(id(source))
        if hit is not None and hit[0] is source:
            return hit[1]
        view = self._build(source)
        if len(self._table) >= self._size:
            self._table.clear()
        self._table[id(source)] = (source, view)
        return view


def _principal(p: Principal) -> Fixed:
    return Fixed(p.policy_view(), roles=tuple(p.roles), tags=tuple(p.tags))


def _backend(b: BackendSpec) -> Fixed:
    facts = b.facts()
    return Fixed(facts, retention=Fixed(facts["retention"]), models=tuple(b.models))


def _denial_citations(d: Decision) -> Fixed:
    """Each denying rule and the government actions it cited (none: an empty list), so that the
    denials report credits each rule with its own citations, not with every rule's."""
    cited: dict[str, set[str]] = {}
    for r in d.denials:
        ids = cited.setdefault(r.rule, set())
        if r.citation and r.citation.action_id:
            ids.add(r.citation.action_id)
    return Fixed({rule: tuple(sorted(ids)) for rule, ids in cited.items()})


def _decision(d: Decision) -> Fixed:
    return Fixed(
        allow=d.allow,
        permitted_backends=tuple(d.permitted_backends),
        rule_ids=tuple(sorted({r.rule for r in d.reasons})),
        denying_rule_ids=tuple(sorted({r.rule for r in d.denials})),
        citation_ids=tuple(
            sorted({r.citation.action_id for r in d.reasons if r.citation and r.citation.action_id})
        ),
        denial_citations=_denial_citations(d),
        obligations=Fixed(d.obligations),
    )


# The principal as the policy engine and the audit trail see it (the contract's ``principal``).
principal_view: _Views[Principal] = _Views(_principal)
# A backend's facts (the contract's ``backends[]``), same as ``BackendSpec.facts()``.
backend_facts: _Views[BackendSpec] = _Views(_backend)
# What the audit trail keeps of a decision: outcome, rule and citation ids, obligations.
decision_view: _Views[Decision] = _Views(_decision)

_deployment: dict[str, Fixed] = {}


def deployment_view(stance: str) -> Fixed:
    """The contract's ``deployment`` for a self-hosted stance (one view per stance)."""
    view = _deployment.get(stance)
    if view is None:
        view = _deployment[stance] = Fixed(self_hosted_stance=stance)
    return view


# The audit event's ``pii`` part of a request in which nothing was found, acted on, left
# uninspected or let through (every request while PII inspection is off): one view, so its
# normalised form is computed once, not twice per request.
NO_PII = Fixed(
    counts=Fixed(),
    actions=Fixed(),
    output=Fixed(),
    uninspectable=(),
    insecure=(),
    subjects=(),
    output_subjects=(),
)
