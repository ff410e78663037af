"""A request's outcome, recorded once it is over: metrics, the limiter's reconciliation, the
captured answer and the audit completion record (:func:`finish`, run for every request, refused,
failed or served)."""

from __future__ import annotations

import logging
from typing import Any

from gateway.context import RequestContext
from gateway.limiter import Reservation
from gateway.services import Services

__all__ = ["finish", "tokens_used", "usage_of"]

log = logging.getLogger("portcullis.pipeline")


def tokens_used(ctx: RequestContext, reservation: Reservation) -> int:
    """What the token budget is charged: the answer's usage; nothing if nothing was forwarded;
    the reservation (the estimate) if the backend was called but reported no usage (a stream
    without ``include_usage``, a backend that omits it), which was refunded as if free."""
    used = ctx.usage.get("total_tokens")
    if used is not None:
        return used
    return reservation.tokens if ctx.forwarded else 0


def usage_of(body: dict[str, Any]) -> dict[str, int]:
    u = body.get("usage")
    if not isinstance(u, dict):
        return {}
    return {
        k: v
        for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(v := u.get(k), int)
    }


async def finish(services: Services, ctx: RequestContext, reservation: Reservation | None) -> None:
    """Record the outcome: metrics, limiter reconciliation, the audit completion record."""
    s = services
    elapsed = ctx.elapsed
    s.metrics.finished(
        ctx.api or ctx.endpoint,
        ctx.status,
        ctx.backend.id if ctx.backend else "none",
        elapsed,
        max(0.0, elapsed - ctx.upstream_s),
    )
    cost = ctx.cost_microusd()
    if cost and ctx.backend is not None:
        s.metrics.cost.labels(ctx.backend.id).inc(cost / 1e6)
        if s.budgets is not None and ctx.principal is not None:
            s.budgets.charge(ctx.principal, cost, s.settings.budgets)
    if ctx.canary is not None and ctx.canary.leaks:
        s.metrics.prompt_leaks.labels(ctx.canary.action).inc()
    if s.tracer is not None:
        s.tracer.finish(ctx)
    if reservation is not None:
        for taken in (reservation, *reservation.linked):
            await s.limiter.reconcile(taken, tokens_used(ctx, taken))
    if ctx.content_captured and s.capture is not None:
        await s.capture.answer(ctx)
    try:
        await s.audit.complete(
            ctx.event(s.secret.secret_id, s.config_hash, s.settings.audit.record_client_address)
        )
    except Exception as exc:  # noqa: BLE001 - the answer is already out; count and log the loss
        s.metrics.fail_closed.labels("audit_complete").inc()
        log.error("audit completion record failed: %s", type(exc).__name__)
