"""``portcullis keys``: API keys and the principals they stand for. ``keys create``, ``keys list``
and ``keys revoke`` are here; the commands that change an active key (its limits, budget,
expiry, models and networks, and its rotation) are in :mod:`gateway.cli.key_changes` and join
the group here."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.cli._common import settings_from
from gateway.cli.key_call import (
    actor,
    limit_text,
    parse_budget,
    parse_expiry,
    read_limits,
    run,
    usd_text,
)
from gateway.cli.key_changes import (
    budget_cmd,
    expiry_cmd,
    limits_cmd,
    models_cmd,
    networks_cmd,
    rotate_cmd,
)
from gateway.keys import KeyService
from gateway.principal import SECTORS

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--user", required=True)
@click.option(
    "--jurisdiction", required=True, help="ISO 3166-1 alpha-2 or ISO 3166-2, e.g. AU or AU-NSW"
)
@click.option("--sector", required=True, type=click.Choice(SECTORS))
@click.option("--team", default=None)
@click.option("--role", "roles", multiple=True)
@click.option("--tag", "tags", multiple=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--description", default=None)
@click.option(
    "--rpm",
    type=click.IntRange(0),
    default=None,
    help="This key's requests per minute (0: no limit; default: limits.requests_per_minute).",
)
@click.option(
    "--tpm",
    type=click.IntRange(0),
    default=None,
    help="This key's model tokens per minute (0: no limit; default: limits.tokens_per_minute).",
)
@click.option(
    "--parallel",
    type=click.IntRange(0, 100_000),
    default=None,
    help="This key's requests in flight at once (0: no limit; default: limits.max_parallel).",
)
@click.option(
    "--expires-in",
    default=None,
    help="The key stops working after this long: 90d, 12h, 30m or 3600s.",
)
@click.option(
    "--expires-at",
    default=None,
    help="The key stops working at this time: ISO 8601, e.g. 2027-03-31 or "
    "2027-03-31T17:00:00+10:00 (no offset: UTC).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    help="A model (name or alias) the key may use; repeat for more. Default: every model.",
)
@click.option(
    "--budget-usd",
    type=float,
    default=None,
    help="This key's spend budget per period (budgets.period) in US dollars (0: none; "
    "default: budgets.key_usd).",
)
@click.option(
    "--budget-period",
    type=click.Choice(["day", "week", "month"]),
    default=None,
    help="The period this key's budget renews on (default: budgets.period).",
)
@click.option(
    "--network",
    "networks",
    multiple=True,
    help="A client network the key may be used from, as a CIDR block (10.20.0.0/16, "
    "2001:db8::/32); repeat for more. Default: anywhere.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def create(
    ctx: click.Context,
    user: str,
    jurisdiction: str,
    sector: str,
    team: str | None,
    roles: tuple[str, ...],
    tags: tuple[str, ...],
    tenant: str,
    description: str | None,
    rpm: int | None,
    tpm: int | None,
    parallel: int | None,
    expires_in: str | None,
    expires_at: str | None,
    models: tuple[str, ...],
    budget_usd: float | None,
    budget_period: str | None,
    networks: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a key. It is printed once and cannot be shown again."""
    settings = settings_from(ctx)
    expiry = parse_expiry(expires_in, expires_at)
    budget = parse_budget(budget_usd)

    async def work(svc: KeyService) -> dict[str, Any]:
        issued = await svc.create(
            user=user,
            jurisdiction=jurisdiction,
            sector=sector,
            team=team,
            roles=roles,
            tags=tags,
            tenant=tenant,
            description=description,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            max_parallel=parallel,
            budget_period=budget_period,
            actor=actor(),
            expires_at=expiry,
            models=models or None,
            budget_microusd=budget,
            networks=networks or None,
        )
        record = await svc.get(issued.key_id)
        assert record is not None
        return {"key": issued.key, **record.to_json()}

    try:
        out = run(settings, work)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(out["key"])
        click.echo(
            f"key id {out['key_id']} for {out['user']} ({out['jurisdiction']}, {out['sector']}); "
            "store it now: it is not shown again.",
            err=True,
        )


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--user", default=None, help="Only this user's keys.")
@click.option("--team", default=None, help="Only this team's keys.")
@click.option("--jurisdiction", default=None, help="Only these keys (AU includes AU-NSW).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(
    ctx: click.Context,
    include_revoked: bool,
    user: str | None,
    team: str | None,
    jurisdiction: str | None,
    as_json: bool,
) -> None:
    """List keys (ids and principals; never the keys themselves)."""
    try:
        records = run(
            settings_from(ctx),
            lambda svc: svc.list(include_revoked, user=user, team=team, jurisdiction=jurisdiction),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records]))
        return
    for r in records:
        state = "revoked" if r.revoked_at else "expired" if r.expired() else "active"
        click.echo(
            f"{r.key_id}\t{state}\t{r.user}\t{r.team or '-'}\t{r.jurisdiction}\t{r.sector}\t"
            f"{','.join(r.roles) or '-'}\t{limit_text(r.requests_per_minute)} rpm, "
            f"{limit_text(r.tokens_per_minute)} tpm"
            + ("" if r.max_parallel is None else f", {limit_text(r.max_parallel)} in flight")
            + "\t"
            + (f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC" if r.expires_at else "no expiry")
            + (f"\treplaces {r.rotated_from}" if r.rotated_from else "")
            + (f"\tmodels {','.join(r.models)}" if r.models is not None else "")
            + (f"\t{r.hint}" if r.hint else "")
            + _budget_text(r.budget_microusd, r.budget_period)
            + (f"\tnetworks {','.join(r.networks)}" if r.networks is not None else "")
        )


def _budget_text(microusd: int | None, period: str | None) -> str:
    """A key's own budget and period for ``keys list`` (nothing when it has neither)."""
    if microusd is None and period is None:
        return ""
    amount = "default" if microusd is None else usd_text(microusd)
    return f"\tbudget {amount}" + ("" if period is None else f" per {period}")


@keys.command("revoke")
@click.argument("key_id", required=False)
@click.option("--user", default=None, help="Revoke every active key in this person's name.")
@click.option("--tenant", default=None, help="With --user: only their keys in this tenant.")
@click.pass_context
def revoke(ctx: click.Context, key_id: str | None, user: str | None, tenant: str | None) -> None:
    """Revoke a key by its id, or every key of a person (--user: someone leaving)."""
    if (key_id is None) == (user is None):
        raise click.UsageError("give a key id or --user, not both")
    if user is not None:
        try:
            ids = run(settings_from(ctx), lambda svc: svc.revoke_user(user, actor(), tenant))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        for kid in ids:
            click.echo(f"revoked {kid}")
        click.echo(f"{len(ids)} key(s) of {user} revoked", err=True)
        return
    assert key_id is not None
    if not run(settings_from(ctx), lambda svc: svc.revoke(key_id, actor())):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


@keys.command("usage")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /admin/keys/{id}/usage).")
@click.pass_context
def usage_cmd(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Where a key stands now: its requests in flight and what its rate and token buckets hold
    (from Redis, every replica's; without redis.url each gateway holds its own: ask one, GET
    /admin/keys/{id}/usage), and each spend budget it is held to with what is left."""
    from gateway.budgets import Budgets
    from gateway.key_usage import key_usage
    from gateway.limiter import Limiter

    settings = settings_from(ctx)

    async def work(svc: KeyService, limiter: Limiter | None) -> dict[str, Any] | None:
        record = await svc.get(key_id)
        if record is None:
            return None
        return await key_usage(record, limiter, Budgets(svc.engine), settings)

    out = read_limits(settings, work)
    if out is None:
        raise click.ClickException(f"no key with id {key_id}")
    if as_json:
        click.echo(json.dumps(out))
        return
    lim = out["limits"]
    if lim is None:
        click.echo(
            "limits\tnot known here: without redis.url each gateway holds its own "
            "(ask one: GET /admin/keys/{id}/usage)"
        )
    shared = [(f"{scope} ", out[f"{scope}_limits"]) for scope in ("user", "team", "tenant")]
    for whose, shown in [("", lim), *shared]:
        if shown is None:
            continue
        for what, rate, left in (
            ("requests", shown["requests_per_minute"], shown["requests_left"]),
            ("tokens", shown["tokens_per_minute"], shown["tokens_left"]),
        ):
            text = f"{left} of {rate} left this minute" if rate else "no limit"
            click.echo(f"{whose}{what}\t{text}")
        most = shown["max_parallel"]
        click.echo(
            f"{whose}in flight\t{shown['in_flight']}" + (f" of at most {most}" if most else "")
        )
    for b in out["budgets"]:
        click.echo(
            f"{b['scope']} budget\tUS${b['remaining_usd']:,.2f} of US${b['limit_usd']:,.2f} left"
            f" for {b['period']} (renews {b['renews_at']})"
        )


# the commands that change an active key (gateway.cli.key_changes)
for _command in (limits_cmd, budget_cmd, expiry_cmd, models_cmd, networks_cmd, rotate_cmd):
    keys.add_command(_command)
