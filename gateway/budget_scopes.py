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


def budgets_of(p: Principal, settings: BudgetSettings) -> list[Budget]:
    """The budgets a request of ``p`` is held to: the key's own (or ``key_usd``; over the key's
    own period, else ``budgets.period``), the person's (``users`` or ``user_usd``), the team's
    and the tenant's (over ``budgets.period``)."""
    out = []
    every = settings.period
    own = p.budget_microusd
    if own is None and settings.key_usd:
        own = micro(settings.key_usd)
    if own:
        out.append(Budget(_key_scope(p), "key", own, p.budget_period or every))
    person = settings.users.get(p.user, settings.user_usd)
    if person:
        out.append(Budget(user_scope(p.tenant, p.user), "user", micro(person), every))
    if p.team is not None and (team := settings.teams.get(p.team)):
        out.append(Budget(f"team:{p.team}", "team", micro(team), every))
    if tenant := settings.tenants.get(p.tenant):
        out.append(Budget(f"tenant:{p.tenant}", "tenant", micro(tenant), every))
    return out


def charged_slots(p: Principal, settings: BudgetSettings, now: datetime) -> list[tuple[str, str]]:
    """The (scope, period) a finished request of ``p`` is charged to: every scope in
    ``budgets.period``'s current period, and the key's scope in its own period too when it has
    one (so its spend is counted whichever period it is held to, before and after a change)."""
    period, _ = period_of(settings.period, now)
    out = [(scope, period) for scope in scopes_of(p)]
    if p.budget_period is not None and p.budget_period != settings.period:
        out.append((_key_scope(p), period_of(p.budget_period, now)[0]))
    return out


def period_kind(period: str) -> str:
    """Which kind of period a period's name is (``2026-11-30`` a day, ``2026-W49`` a week,
    ``2026-11`` a month)."""
    if "-W" in period:
        return "week"
    return "day" if period.count("-") == 2 else "month"
