"""``portcullis keys limits|budget|expiry|models|networks|rotate``: the changes to an active key
(its own rate and token limits, spend budget, expiry, models and client networks) and its
rotation. Running replicas apply a change at once with Redis, else within keys.cache_ttl_s.
The commands join the ``keys`` group in :mod:`gateway.cli.keys`."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.cli._common import settings_from
from gateway.cli.key_call import (
    UNITS,
    actor,
    change,
    limit_text,
    parse_budget,
    parse_expiry,
    usd_text,
)
from gateway.keys import KeyService

__all__ = ["budget_cmd", "expiry_cmd", "limits_cmd", "models_cmd", "networks_cmd", "rotate_cmd"]


def _rate(value: str | None, current: int | None, name: str) -> int | None:
    """``--rpm``/``--tpm`` of ``keys limits``: a whole number, ``default``, or absent (keep)."""
    if value is None:
        return current
    if value == "default":
        return None
    if not value.isdigit():
        raise click.BadParameter(f"{name}: a whole number (0: no limit) or 'default'")
    return int(value)


@click.command("limits")
@click.argument("key_id")
@click.option("--rpm", default=None, help="Requests per minute: N (0: no limit) or 'default'.")
@click.option("--tpm", default=None, help="Model tokens per minute: N (0: no limit) or 'default'.")
@click.option(
    "--parallel", default=None, help="Requests in flight at once: N (0: no limit) or 'default'."
)
@click.pass_context
def limits_cmd(
    ctx: click.Context, key_id: str, rpm: str | None, tpm: str | None, parallel: str | None
) -> None:
    """Set a key's own limits (an option left out keeps its value). Running replicas apply
    them at once with Redis, else within keys.cache_ttl_s."""

    async def work(svc: KeyService) -> tuple[int | None, int | None, int | None] | None:
        record = await svc.get(key_id)
        if record is None or record.revoked_at is not None:
            return None
        new = (
            _rate(rpm, record.requests_per_minute, "--rpm"),
            _rate(tpm, record.tokens_per_minute, "--tpm"),
            _rate(parallel, record.max_parallel, "--parallel"),
        )
        done = await svc.set_limits(key_id, new[0], new[1], actor=actor(), max_parallel=new[2])
        return new if done else None

    out = change(ctx, key_id, work)
    click.echo(
        f"{key_id}: {limit_text(out[0])} rpm, {limit_text(out[1])} tpm, "
        f"{limit_text(out[2])} in flight"
    )


@click.command("budget")
@click.argument("key_id")
@click.argument("usd")
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month", "default"]),
    default=None,
    help="The period it renews on ('default': budgets.period); left out: kept.",
)
@click.pass_context
def budget_cmd(ctx: click.Context, key_id: str, usd: str, period: str | None) -> None:
    """Set a key's own spend budget per period: US dollars (0: none) or 'default'
    (budgets.key_usd), and with --period the period it renews on. What it spent stays counted.
    Running replicas apply it at once with Redis, else within keys.cache_ttl_s."""
    if usd == "default":
        budget = None
    else:
        try:
            dollars = float(usd)
        except ValueError:
            raise click.BadParameter("USD: dollars (0: no budget) or 'default'") from None
        budget = parse_budget(dollars)

    async def work(svc: KeyService) -> tuple[str | None] | None:
        new: Any = ... if period is None else None if period == "default" else period
        if not await svc.set_budget(key_id, budget, actor=actor(), period=new):
            return None
        record = await svc.get(key_id)
        return (record.budget_period if record is not None else None,)

    (own,) = change(ctx, key_id, work)
    shown = "default (budgets.key_usd)" if budget is None else usd_text(budget)
    click.echo(f"{key_id}: budget {shown} per {own or settings_from(ctx).budgets.period}")


@click.command("expiry")
@click.argument("key_id")
@click.option("--expires-in", default=None, help="From now: N and s, m, h or d, e.g. 90d.")
@click.option("--expires-at", default=None, help="ISO 8601, e.g. 2027-03-31 (no offset: UTC).")
@click.option("--never", is_flag=True, help="The key no longer expires.")
@click.pass_context
def expiry_cmd(
    ctx: click.Context, key_id: str, expires_in: str | None, expires_at: str | None, never: bool
) -> None:
    """Move an active key's expiry. Running replicas apply it at once with Redis, else within
    keys.cache_ttl_s."""
    if sum(bool(x) for x in (expires_in, expires_at, never)) != 1:
        raise click.UsageError("give one of --expires-in, --expires-at or --never")
    at = None if never else parse_expiry(expires_in, expires_at)
    change(ctx, key_id, lambda svc: svc.set_expiry(key_id, at, actor()))
    click.echo(f"{key_id}: " + (f"expires {at:%Y-%m-%d %H:%M} UTC" if at else "no expiry"))


def _listed(values: tuple[str, ...], none: bool, option: str, none_flag: str) -> list[str] | None:
    """A list option given one or more times, or the flag that means "no list" (None)."""
    if bool(values) == none:
        raise click.UsageError(f"give {option} (one or more) or {none_flag}")
    return None if none else list(values)


@click.command("models")
@click.argument("key_id")
@click.option("--model", "models", multiple=True, help="A model it may use; repeat for more.")
@click.option("--all", "every", is_flag=True, help="Every model policy permits (no list).")
@click.pass_context
def models_cmd(ctx: click.Context, key_id: str, models: tuple[str, ...], every: bool) -> None:
    """Set the models an active key may use (others are "not found" to it). Running replicas
    apply it at once with Redis, else within keys.cache_ttl_s."""
    allowed = _listed(models, every, "--model", "--all")
    change(ctx, key_id, lambda svc: svc.set_models(key_id, allowed, actor()))
    click.echo(f"{key_id}: " + ("every model" if allowed is None else ", ".join(models)))


@click.command("networks")
@click.argument("key_id")
@click.option(
    "--network", "networks", multiple=True, help="A CIDR block it may be used from; repeat."
)
@click.option("--anywhere", is_flag=True, help="From any address (no list).")
@click.pass_context
def networks_cmd(
    ctx: click.Context, key_id: str, networks: tuple[str, ...], anywhere: bool
) -> None:
    """Keep an active key to some client networks (a request from elsewhere: 403
    address_not_allowed, nothing forwarded), or let it be used from anywhere again. Running
    replicas apply it at once with Redis, else within keys.cache_ttl_s."""
    allowed = _listed(networks, anywhere, "--network", "--anywhere")
    change(ctx, key_id, lambda svc: svc.set_networks(key_id, allowed, actor()))
    click.echo(f"{key_id}: " + ("anywhere" if allowed is None else ", ".join(networks)))


@click.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace",
    default="0s",
    show_default=True,
    help="How long the old key keeps working beside the new one: N and s, m, h or d "
    "(0s: it is revoked at once; at most 30d).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def rotate_cmd(ctx: click.Context, key_id: str, grace: str, as_json: bool) -> None:
    """Issue a new key for the same principal, limits, expiry and description, and retire the
    old one. The new key is printed once and cannot be shown again."""
    n, unit = grace[:-1], grace[-1:]
    if not n.isdigit() or unit not in UNITS:
        raise click.BadParameter("--grace: a whole number and s, m, h or d, e.g. 24h")
    grace_s = int(n) * UNITS[unit]

    async def work(svc: KeyService) -> dict[str, Any] | None:
        done = await svc.rotate(key_id, grace_s=grace_s, actor=actor())
        if done is None:
            return None
        issued, old = done
        record = await svc.get(issued.key_id)
        assert record is not None
        return {"key": issued.key, **record.to_json(), "replaced": old.to_json()}

    out = change(ctx, key_id, work)
    if as_json:
        click.echo(json.dumps(out))
        return
    old = out["replaced"]
    click.echo(out["key"])
    fate = "revoked" if old["revoked_at"] else f"works until {old['expires_at']}"
    click.echo(
        f"key id {out['key_id']} replaces {key_id} ({fate}); store it now: it is not shown again.",
        err=True,
    )
