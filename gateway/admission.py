"""A request's admission against its key's limits and its spend budgets (the pipeline's
``reserve`` step): its budgets checked (:mod:`gateway.budgets`), then a request, its estimated
tokens and a slot in flight taken from the key's buckets (:mod:`gateway.limiter`).

Shadow mode (``limits.shadow``, ``budgets.shadow``) admits what would be refused: the refusal
is counted (``portcullis_shadow_refusals_total{limit}``) and named in the request's audit record
(``shadowed``), and nothing is taken from the buckets for it — as a refused request takes
nothing — so an operator can see whom new limits or budgets would stop before they do. An
unavailable limiter or ledger is never shadowed: it refuses (503) as always.
"""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.http.validate import ParsedRequest
from gateway.limiter import Reservation
from gateway.services import Services

__all__ = ["LIMITS", "admit"]

# The refusals of a key's limits, by the name metrics and records give them.
LIMITS = {
    Cause.RATE_LIMITED: "requests",
    Cause.BUDGET_EXCEEDED: "tokens",
    Cause.PARALLEL_LIMITED: "parallel",
}


async def admit(s: Services, ctx: RequestContext, parsed: ParsedRequest) -> Reservation:
    """Admit the request or raise its 429 (or 503: the limiter or the ledger did not answer)."""
    assert ctx.principal is not None
    t0 = time.perf_counter()
    p = ctx.principal
    settings = s.settings
    if s.budgets is not None:
        try:
            ctx.budget_headers = await s.budgets.admit(p, settings.budgets)
        except GatewayError as exc:
            if exc.cause is not Cause.SPEND_BUDGET_EXCEEDED or not settings.budgets.shadow:
                raise
            _shadowed(s, ctx, "budget", f"budget:{exc.details['budget']['scope']}")
    key = p.buckets or p.key_id
    try:
        reservation = await s.limiter.reserve(
            key,
            parsed.token_estimate,
            p.requests_per_minute,
            p.tokens_per_minute,
            p.max_parallel,
            s.catalog.lease_s,
        )
    except GatewayError as exc:
        if (limit := LIMITS.get(exc.cause)) is None:
            raise
        if not settings.limits.shadow:
            s.metrics.limit_refusals.labels(limit).inc()
            raise
        _shadowed(s, ctx, limit, limit)
        reservation = Reservation(key, 0, 0, 0)  # nothing taken, nothing to give back
    ctx.mark("limits", t0)
    if reservation.local:
        s.metrics.limiter_fallback.inc()
    return reservation


def _shadowed(s: Services, ctx: RequestContext, limit: str, named: str) -> None:
    s.metrics.shadow_refusals.labels(limit).inc()
    ctx.shadowed.append(named)
