"""``portcullis keys create|list|revoke|limits|expiry|models|rotate``: API keys, the principals
they stand for, a key's own rate and token limits, its expiry, its models, and its rotation."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from audit.db import open_engine
from audit.shapes import is_name
from audit.store import append, make_entry, parse_utc, prepare, writer_id
from gateway.cli._common import settings_from
from gateway.config import Settings
from gateway.key_records import dollars_text, validate_budget
from gateway.keys import KeyNotRecorded, KeyService
from gateway.principal import SECTORS
from gateway.revocations import RedisRevocations
from gateway.secrets_store import load_server_secret
from gateway.storage.db import create_engine_for

__all__ = ["keys"]

T = TypeVar("T")


def _actor() -> str:
    """Who ran the command, for the key's audit entry: ``cli:<login>`` (an identifier)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        return "cli"
    return f"cli:{login}" if is_name(f"cli:{login}") else "cli"


def _run(settings: Settings, work: Callable[[KeyService], Awaitable[T]]) -> T:
    async def go() -> T:
        secret = load_server_secret(
            settings.data_dir, settings.keys.secret_file, settings.keys.secret_env
        )
        engine = create_engine_for(settings.database_url())
        # Key entries go to the audit trail the gateway writes (gateway.keys, "key" kind).
        audit_engine = open_engine(settings.audit.database_url or settings.database_url())
        writer = writer_id()

        async def record(kind: str, event: Mapping[str, Any]) -> int:
            async with audit_engine.connect() as conn:
                await prepare(conn)
                return await append(conn, [make_entry(kind, event, writer)])

        # With Redis, a revocation is announced to the running replicas (gateway.revocations).
        feed = RedisRevocations(settings.redis.url) if settings.redis.url else None
        try:
            return await work(
                KeyService(engine, secret, settings.keys.prefix, revocations=feed, recorder=record)
            )
        except KeyNotRecorded as exc:
            raise click.ClickException(
                f"the audit trail did not take the key's record ({exc}); nothing was changed"
            ) from None
        finally:
            if feed is not None:
                await feed.close()
            await audit_engine.dispose()
            await engine.dispose()

    return asyncio.run(go())


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
    expires_in: str | None,
    expires_at: str | None,
    models: tuple[str, ...],
    budget_usd: float | None,
    networks: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a key. It is printed once and cannot be shown again."""
    settings = settings_from(ctx)
    expiry = _expiry(expires_in, expires_at)
    budget = _budget(budget_usd)

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
            actor=_actor(),
            expires_at=expiry,
            models=models or None,
            budget_microusd=budget,
            networks=networks or None,
        )
        record = await svc.get(issued.key_id)
        assert record is not None
        return {"key": issued.key, **record.to_json()}

    try:
        out = _run(settings, work)
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
        records = _run(
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
            f"{','.join(r.roles) or '-'}\t{_limit(r.requests_per_minute)} rpm, "
            f"{_limit(r.tokens_per_minute)} tpm\t"
            + (f"expires {r.expires_at:%Y-%m-%d %H:%M} UTC" if r.expires_at else "no expiry")
            + (f"\treplaces {r.rotated_from}" if r.rotated_from else "")
            + (f"\tmodels {','.join(r.models)}" if r.models is not None else "")
            + (f"\t{r.hint}" if r.hint else "")
            + ("" if r.budget_microusd is None else f"\tbudget {_usd(r.budget_microusd)}")
            + (f"\tnetworks {','.join(r.networks)}" if r.networks is not None else "")
        )


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    """``--expires-in`` / ``--expires-at`` as a UTC time (checked further by the key service)."""
    if expires_in and expires_at:
        raise click.BadParameter("give --expires-in or --expires-at, not both")
    if expires_in:
        n, unit = expires_in[:-1], expires_in[-1:]
        if not n.isdigit() or unit not in _UNITS:
            raise click.BadParameter("--expires-in: a whole number and s, m, h or d, e.g. 90d")
        return datetime.now(UTC) + timedelta(seconds=int(n) * _UNITS[unit])
    if expires_at:
        try:
            return parse_utc(expires_at)
        except ValueError:
            raise click.BadParameter(
                "--expires-at: ISO 8601, e.g. 2027-03-31 or 2027-03-31T17:00:00+10:00"
            ) from None
    return None


def _budget(dollars: float | None) -> int | None:
    try:
        return validate_budget(dollars)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("budget_usd", "--budget-usd")) from None


def _usd(microusd: int) -> str:
    return "none" if microusd == 0 else dollars_text(microusd)


def _limit(value: int | None) -> str:
    return "default" if value is None else "unlimited" if value == 0 else str(value)


def _rate(value: str | None, current: int | None, name: str) -> int | None:
    """``--rpm``/``--tpm`` of ``keys limits``: a whole number, ``default``, or absent (keep)."""
    if value is None:
        return current
    if value == "default":
        return None
    if not value.isdigit():
        raise click.BadParameter(f"{name}: a whole number (0: no limit) or 'default'")
    return int(value)


@keys.command("limits")
@click.argument("key_id")
@click.option("--rpm", default=None, help="Requests per minute: N (0: no limit) or 'default'.")
@click.option("--tpm", default=None, help="Model tokens per minute: N (0: no limit) or 'default'.")
@click.pass_context
def limits_cmd(ctx: click.Context, key_id: str, rpm: str | None, tpm: str | None) -> None:
    """Set a key's own limits (an option left out keeps its value). Running replicas apply
    them at once with Redis, else within keys.cache_ttl_s."""

    async def work(svc: KeyService) -> tuple[int | None, int | None] | None:
        record = await svc.get(key_id)
        if record is None or record.revoked_at is not None:
            return None
        new = (
            _rate(rpm, record.requests_per_minute, "--rpm"),
            _rate(tpm, record.tokens_per_minute, "--tpm"),
        )
        return new if await svc.set_limits(key_id, *new, actor=_actor()) else None

    out = _change(ctx, key_id, work)
    click.echo(f"{key_id}: {_limit(out[0])} rpm, {_limit(out[1])} tpm")


@keys.command("budget")
@click.argument("key_id")
@click.argument("usd")
@click.pass_context
def budget_cmd(ctx: click.Context, key_id: str, usd: str) -> None:
    """Set a key's own spend budget per period: US dollars (0: none) or 'default'
    (budgets.key_usd). What it spent this period stays counted. Running replicas apply it at
    once with Redis, else within keys.cache_ttl_s."""
    if usd == "default":
        budget = None
    else:
        try:
            dollars = float(usd)
        except ValueError:
            raise click.BadParameter("USD: dollars (0: no budget) or 'default'") from None
        budget = _budget(dollars)

    async def work(svc: KeyService) -> bool | None:
        return True if await svc.set_budget(key_id, budget, actor=_actor()) else None

    _change(ctx, key_id, work)
    shown = "default (budgets.key_usd)" if budget is None else _usd(budget)
    click.echo(f"{key_id}: budget {shown} per {settings_from(ctx).budgets.period}")


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
            ids = _run(settings_from(ctx), lambda svc: svc.revoke_user(user, _actor(), tenant))
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        for kid in ids:
            click.echo(f"revoked {kid}")
        click.echo(f"{len(ids)} key(s) of {user} revoked", err=True)
        return
    assert key_id is not None
    if not _run(settings_from(ctx), lambda svc: svc.revoke(key_id, _actor())):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


def _change(
    ctx: click.Context, key_id: str, work: Callable[[KeyService], Awaitable[T | None]]
) -> T:
    """Run one change to an active key and return what it returns: a bad value names its
    field; no such key (``work`` returned None or False) says so."""
    try:
        out = _run(settings_from(ctx), work)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if out is None or out is False:
        raise click.ClickException(f"no active key with id {key_id}")
    return out


@keys.command("expiry")
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
    at = None if never else _expiry(expires_in, expires_at)
    _change(ctx, key_id, lambda svc: svc.set_expiry(key_id, at, _actor()))
    click.echo(f"{key_id}: " + (f"expires {at:%Y-%m-%d %H:%M} UTC" if at else "no expiry"))


@keys.command("models")
@click.argument("key_id")
@click.option("--model", "models", multiple=True, help="A model it may use; repeat for more.")
@click.option("--all", "every", is_flag=True, help="Every model policy permits (no list).")
@click.pass_context
def models_cmd(ctx: click.Context, key_id: str, models: tuple[str, ...], every: bool) -> None:
    """Set the models an active key may use (others are "not found" to it). Running replicas
    apply it at once with Redis, else within keys.cache_ttl_s."""
    if bool(models) == every:
        raise click.UsageError("give --model (one or more) or --all")
    allowed = None if every else list(models)
    _change(ctx, key_id, lambda svc: svc.set_models(key_id, allowed, _actor()))
    click.echo(f"{key_id}: " + ("every model" if allowed is None else ", ".join(models)))


@keys.command("networks")
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
    if bool(networks) == anywhere:
        raise click.UsageError("give --network (one or more) or --anywhere")
    allowed = None if anywhere else list(networks)
    _change(ctx, key_id, lambda svc: svc.set_networks(key_id, allowed, _actor()))
    click.echo(f"{key_id}: " + ("anywhere" if allowed is None else ", ".join(networks)))


@keys.command("rotate")
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
    if not n.isdigit() or unit not in _UNITS:
        raise click.BadParameter("--grace: a whole number and s, m, h or d, e.g. 24h")
    grace_s = int(n) * _UNITS[unit]

    async def work(svc: KeyService) -> dict[str, Any] | None:
        done = await svc.rotate(key_id, grace_s=grace_s, actor=_actor())
        if done is None:
            return None
        issued, old = done
        record = await svc.get(issued.key_id)
        assert record is not None
        return {"key": issued.key, **record.to_json(), "replaced": old.to_json()}

    out = _change(ctx, key_id, work)
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
