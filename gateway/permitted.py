"""Which permitted backends a request may go to, given what its inspection found: policy
permits backends; a found entity type whose action is ``block`` rules a backend out, and so does
content the detector cannot read (images, audio, files, token ids) for a backend policy does not
trust with every kind of personal data."""

from __future__ import annotations

from gateway.config.backends import BackendSpec
from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.insecure import InsecurePasses
from gateway.pii.walk import uninspectable
from gateway.policy.contract import Decision, PiiAction
from gateway.services import Services

__all__ = ["permitted"]


def permitted(
    s: Services, ctx: RequestContext, decision: Decision, insecure: InsecurePasses
) -> list[BackendSpec]:
    """Permitted backends, less those for which a found entity type must be blocked, and —
    when the request holds content the detector cannot read (images, audio, files, token
    ids) — less those the policy does not trust with every kind of personal data."""
    allowed = set(decision.permitted_backends)
    opaque = ctx.uninspectable = _uninspectable(s, ctx)
    out = []
    blocked_types: set[str] = set()
    withheld: list[str] = []  # backends that would need the opaque content inspected
    for b in ctx.candidates:
        if b.id not in allowed:
            continue
        blocks = {e for e in ctx.pii_counts if decision.action_for(b.id, e) is PiiAction.BLOCK}
        if blocks:
            blocked_types |= blocks
            continue
        if opaque and decision.entities_needed((b.id,)) != frozenset():
            withheld.append(b.id)
            if not s.settings.pii.insecure_pass_uninspectable:
                continue
        out.append(b)
    if withheld and s.settings.pii.insecure_pass_uninspectable:
        # recorded and counted per request, logged at most once a minute (gateway.insecure)
        insecure.record(
            ctx,
            "pii.insecure_pass_uninspectable",
            "pii.insecure_pass_uninspectable is true (images, audio, files or token ids that "
            "cannot be inspected went to backends policy does not trust with them)",
        )
    if not out:
        if withheld and not blocked_types:
            s.metrics.denials.labels(Cause.UNINSPECTABLE.code).inc()
            raise GatewayError(
                Cause.UNINSPECTABLE,
                "The request holds "
                + ", ".join(opaque)
                + " content, which cannot be inspected for personal data, and no permitted "
                "backend may receive uninspected personal data. Send text only, or use a "
                "model whose backend policy trusts with personal data (a self-hosted one).",
                details={"content_types": opaque},
            )
        if blocked_types:
            s.metrics.denials.labels("pii_blocked").inc()
            raise GatewayError(
                Cause.PII_BLOCKED,
                "The request contains personal data that policy does not allow to leave: "
                + ", ".join(sorted(blocked_types))
                + ".",
                details={"entity_types": sorted(blocked_types)},
            )
        raise GatewayError(Cause.NO_BACKEND, "No permitted backend serves this model.")
    return out


def _uninspectable(s: Services, ctx: RequestContext) -> list[str]:
    """The kinds of unreadable content in the request (none when PII inspection is off)."""
    if s.pii is None or ctx.parsed is None:
        return []
    return uninspectable(ctx.endpoint, ctx.parsed.body)
