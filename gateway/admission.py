"""A request's admission against its key's limits and its spend budgets (the pipeline's
``reserve`` step): its budgets checked (:mod:`gateway.budgets`), then a request, its estimated
tokens and a slot in flight taken from the key's buckets (:mod:`gateway.limiter`), and, when
its person, its team or its tenant has limits its keys share (``limits.user``/``users``,
``limits.teams``, ``limits.tenants``), from theirs too (linked to the key's reservation and
reconciled with it). Refused by a shared limit, what was taken for the request — its request,
its tokens and its slots, from the key's buckets and the shared ones before — is given back: a
refused request (and the SDK's retries of it) spends none of the key's own limits.

Shadow mode (``limits.shadow``, ``budgets.shadow``) admits what would be refused: the refusal
is counted (``portcullis_shadow_refusals_total{limit}``) and named in the request's audit record
(``shadowed``), and nothing is taken from the buckets for it — as a refused request takes
nothing — so an operator can see whom new limits or budgets would stop before they do. An
unavailable limiter or ledger is never shadowed: it refuses (503) as always.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.http.validate import ParsedRequest
from gateway.limiter import Reservation
from gateway.services import Services

if TYPE_CHECKING:
    from gateway.config import Settings

__all__ = ["LIMITS", "admit", "shadow_switches", "shared_bucket", "warn_if_shadowed"]

log = logging.getLogger("portcullis")

# The refusals of a key's limits, by the name metrics and records give them.
LIMITS = {
    Cause.RATE_LIMITED: "requests",
    Cause.BUDGET_EXCEEDED: "tokens",
    Cause.PARALLEL_LIMITED: "parallel",
}


def shadow_switches(settings: Settings) -> list[str]:
    """The shadow-mode switches that are on: while one is, its limits or budgets refuse
    nothing."""
    return [
        name
        for name, on in (
            ("limits.shadow", settings.limits.shadow),
            ("budgets.shadow", settings.budgets.shadow),
        )
        if on
    ]


def warn_if_shadowed(settings: Settings) -> None:
    """A warning at start and after a reload while shadow mode is on (a switch left on after a
    trial would leave the limits unenforced; ``portcullis check`` says so too)."""
    if switches := shadow_switches(settings):
        log.warning(
            "shadow mode (%s): what these would refuse is let through, counted "
            "(portcullis_shadow_refusals_total) and recorded, not refused",
            ", ".join(switches),
        )


def shared_bucket(scope: str, name: str) -> str:
    """The limiter's name for a person's, a team's or a tenant's buckets (``team:ops``,
    ``user:default|liz``; a key's are its id: hex, no colon)."""
    return f"{scope}:{name}"


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
    reservation = await _take(
        s,
        ctx,
        key,
        "",
        (p.requests_per_minute, p.tokens_per_minute, p.max_parallel),
        parsed.token_estimate,
    )
    for scope, name, limits in settings.limits.shared(p.user, p.team, p.tenant):
        rates = (limits.requests_per_minute, limits.tokens_per_minute, limits.max_parallel)
        try:
            taken = await _take(
                s, ctx, shared_bucket(scope, name), f"{scope}_", rates, parsed.token_estimate
            )
        except GatewayError as exc:
            for held in (reservation, *reservation.linked):  # all it took given back
                await s.limiter.reconcile(held, 0, refund_request=True)
            if (limit := LIMITS.get(exc.cause)) is None:
                raise
            whose = f"{p.user}'s" if scope == "user" else f"{scope.capitalize()} {name}'s"
            raise GatewayError(
                exc.cause,
                f"{whose} limit reached ({_WHAT[limit]}); "
                f"retry after {exc.headers.get('retry-after', '1')} s.",
                headers=exc.headers,
            ) from None
        reservation = dataclasses.replace(reservation, linked=(*reservation.linked, taken))
    ctx.mark("limits", t0)
    if reservation.local:
        s.metrics.limiter_fallback.inc()
    return reservation


_WHAT = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "parallel": "requests in flight at once",
}


async def _take(
    s: Services,
    ctx: RequestContext,
    bucket: str,
    prefix: str,
    rates: tuple[int | None, int | None, int | None],
    tokens: int,
) -> Reservation:
    """A reservation from ``bucket`` (a key's, or with ``prefix`` ``user_``, ``team_`` or
    ``tenant_`` a person's, a team's or a tenant's); a refusal counted as ``<prefix><limit>``,
    or in shadow mode counted, recorded (``team:requests``) and let through with nothing
    taken."""
    try:
        return await s.limiter.reserve(bucket, tokens, *rates, s.catalog.lease_s)
    except GatewayError as exc:
        if (limit := LIMITS.get(exc.cause)) is None:
            raise
        if not s.settings.limits.shadow:
            s.metrics.limit_refusals.labels(prefix + limit).inc()
            raise
        _shadowed(s, ctx, prefix + limit, prefix.replace("_", ":") + limit)
        return Reservation(bucket, 0, 0, 0)  # nothing taken, nothing to give back


def _shadowed(s: Services, ctx: RequestContext, limit: str, named: str) -> None:
    s.metrics.shadow_refusals.labels(limit).inc()
    ctx.shadowed.append(named)
