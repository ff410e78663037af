"""Whom a spend budget binds and when it renews (:mod:`gateway.budgets`): the scopes a request
is charged to (``key:<id>``, the rotation chain's first key; ``user:<tenant>|<user>``;
``team:<name>``; ``tenant:<name>``), the budgets it is held to (``budgets`` settings, a key's own
``budget_microusd``), and the calendar period, in UTC, its spend counts in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.config.core import BudgetSettings
from gateway.key_records import micro
from gateway.principal import Principal

__all__ = [
    "Budget",
    "budgets_of",
    "charged_slots",
    "period_kind",
    "period_of",
    "scopes_of",
    "user_scope",
]


def period_of(period: str, now: datetime) -> tuple[str, datetime]:
    """The period ``now`` falls in (``2026-11-30``, ``2026-W49``, ``2026-11``; UTC) and when
    the next one starts."""
    d = now.astimezone(UTC)
    day = datetime(d.year, d.month, d.day, tzinfo=UTC)
    if period == "day":
        return day.strftime("%Y-%m-%d"), day + timedelta(days=1)
    if period == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", day + timedelta(days=8 - iso.weekday)
    if period == "month":
        nxt = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
        return f"{d.year}-{d.month:02d}", nxt
    raise ValueError(f"period: day, week or month, not {period!r}")


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "key:<key id>", "user:<tenant>|<user>", "team:<name>" or "tenant:<name>"
    kind: str  # "key", "user", "team" or "tenant"
    microusd: int
    period: str = "month"  # what it renews on: day, week or month (a key's own, or budgets.period)


def _key_scope(p: Principal) -> str:
    return f"key:{p.buckets or p.key_id}"


def user_scope(tenant: str, user: str) -> str:
    """A person's scope: ``|`` is in no identifier, so tenant and user cannot run together."""
    return f"user:{tenant}|{user}"


def scopes_of(p: Principal) -> list[str]:
    """Every scope a request of ``p`` is charged to."""
    out = [_key_scope(p), user_scope(p.tenant, p.user), f"tenant:{p.tenant}"]
    if p.team is not None:
        out.append(f"team:{p.team}")
    return out


def _sources(
    p: Principal, settings: BudgetSettings
) -> list[tuple[str, str, float | None, str | None]]:
    """Each scope of ``p`` with a budget source: (scope, kind, US dollars or None, its own
    period or None). The key's amount is left to :func:`budgets_of` (micro-dollars)."""
    dollars, own = settings.named("users", p.user) or (settings.user_usd, None)
    person = (dollars, own or settings.user_period)
    out = [
        (_key_scope(p), "key", None, p.budget_period or settings.key_period),
        (user_scope(p.tenant, p.user), "user", *person),
    ]
    if p.team is not None:
        out.append((f"team:{p.team}", "team", *(settings.named("teams", p.team) or (None, None))))
    tenant = settings.named("tenants", p.tenant) or (None, None)
    out.append((f"tenant:{p.tenant}", "tenant", *tenant))
    return out


def budgets_of(p: Principal, settings: BudgetSettings) -> list[Budget]:
    """The budgets a request of ``p`` is held to: the key's own (or ``key_usd``), the person's
    (``users`` or ``user_usd``), the team's and the tenant's; each over its own period where it
    has one (a key's ``budget_period``; ``{usd, period}`` in ``users``, ``teams``, ``tenants``),
    else its kind's (``key_period``, ``user_period``), else ``budgets.period``."""
    out = []
    for scope, kind, dollars, own in _sources(p, settings):
        if kind == "key":
            amount = p.budget_microusd
            if amount is None and settings.key_usd:
                amount = micro(settings.key_usd)
        else:
            amount = micro(dollars) if dollars else 0
        if amount:
            out.append(Budget(scope, kind, amount, own or settings.period))
    return out


def charged_slots(p: Principal, settings: BudgetSettings, now: datetime) -> list[tuple[str, str]]:
    """The (scope, period) a finished request of ``p`` is charged to: every scope in
    ``budgets.period``'s current period, and a scope with a period of its own in that one too
    (so its spend is counted whichever period it is held to, before and after a change)."""
    period, _ = period_of(settings.period, now)
    out = [(scope, period) for scope in scopes_of(p)]
    for scope, _kind, _dollars, own in _sources(p, settings):
        if own is not None and own != settings.period:
            out.append((scope, period_of(own, now)[0]))
    return out


def period_kind(period: str) -> str:
    """Which kind of period a period's name is (``2026-11-30`` a day, ``2026-W49`` a week,
    ``2026-11`` a month)."""
    if "-W" in period:
        return "week"
    return "day" if period.count("-") == 2 else "month"
