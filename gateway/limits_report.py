"""Where the shared limits stand now (``GET /admin/limits``, ``portcullis limits``): every limit
a person's, a team's or a tenant's keys share (``limits.user``/``users``, ``limits.teams``,
``limits.tenants``) with what its buckets hold and its requests in flight, read from the
limiter (Redis: every replica's; in memory: the answering replica's) — so an operator sees a
team nearing its limit before its people are refused. Nothing is taken or changed.
"""

from __future__ import annotations

from typing import Any

from gateway.admission import shared_bucket
from gateway.config import Settings
from gateway.config.core import SharedLimits
from gateway.key_records import KeyRecord
from gateway.limiter import Limiter

__all__ = ["shared_limits"]


async def shared_limits(
    records: list[KeyRecord], limiter: Limiter | None, settings: Settings
) -> dict[str, Any]:
    """``{"object": "list", "shadow", "window", "key_defaults": {...}, "data": [{"scope", "user" |
    "team" | "tenant", ("tenant" for a person), "named", "requests_per_minute",
    "tokens_per_minute", "max_parallel", "standing": {...} | None}, ...]}``: a person held to
    ``limits.user`` or named in ``limits.users`` is listed once per tenant they have an active
    key in (their buckets are per tenant); every named team and tenant is listed. ``limiter``
    None: the standing is not known here (a command line without Redis)."""
    lim = settings.limits
    rows: list[tuple[str, str, SharedLimits, dict[str, Any]]] = []
    people = sorted({(r.tenant, r.user) for r in records if r.active()})
    for tenant, user in people:
        held = lim.users.get(user, lim.user)
        if held is not None:
            who = {"user": user, "tenant": tenant, "named": user in lim.users}
            rows.append(("user", f"{tenant}|{user}", held, who))
    rows += [("team", n, h, {"team": n, "named": True}) for n, h in sorted(lim.teams.items())]
    rows += [("tenant", n, h, {"tenant": n, "named": True}) for n, h in sorted(lim.tenants.items())]
    asked = [
        (shared_bucket(scope, bucket), h.requests_per_minute, h.tokens_per_minute, h.max_parallel)
        for scope, bucket, h, _ in rows
    ]
    found = await limiter.standings(asked) if limiter is not None else [None] * len(asked)
    data = [
        {
            "scope": scope,
            **who,
            "requests_per_minute": rpm,
            "tokens_per_minute": tpm,
            "max_parallel": parallel,
            "standing": standing.to_json() if standing is not None else None,
        }
        for (scope, _, _, who), (_, rpm, tpm, parallel), standing in zip(
            rows, asked, found, strict=True
        )
    ]
    return {
        "object": "list",
        "shadow": lim.shadow,
        "window": lim.window,
        "key_defaults": {
            "requests_per_minute": lim.requests_per_minute,
            "tokens_per_minute": lim.tokens_per_minute,
            "max_parallel": lim.max_parallel,
        },
        "data": data,
    }
