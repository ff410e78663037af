"""What the ``portcullis keys`` commands share: a call to the key service with the audit trail
and Redis wired in, a change to one active key, a read of the limiter the gateways share, who
is acting, and the option values they read (an expiry, a budget) and print (a limit,
dollars)."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from audit.db import open_engine
from audit.shapes import is_name
from audit.store import append, make_entry, parse_utc, prepare, writer_id
from gateway.cli._common import settings_from
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.key_records import dollars_text, validate_budget
from gateway.keys import KeyNotRecorded, KeyService
from gateway.limiter import Limiter, build_limiter
from gateway.revocations import RedisRevocations
from gateway.secrets_store import load_server_secret
from gateway.storage.db import create_engine_for

__all__ = [
    "UNITS",
    "actor",
    "change",
    "limit_text",
    "parse_budget",
    "parse_expiry",
    "read_limits",
    "run",
    "usd_text",
]

T = TypeVar("T")

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # a duration's unit: 90d, 12h, 30m, 3600s


def actor() -> str:
    """Who ran the command, for the key's audit entry: ``cli:<login>`` (an identifier)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        return "cli"
    return f"cli:{login}" if is_name(f"cli:{login}") else "cli"


def run(settings: Settings, work: Callable[[KeyService], Awaitable[T]]) -> T:
    """Run ``work`` against the key service of ``settings`` and return what it returns; the
    engines and the revocation feed are closed after. A key change the audit trail did not
    take is a :class:`click.ClickException`."""

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


def read_limits(
    settings: Settings, work: Callable[[KeyService, Limiter | None], Awaitable[T]]
) -> T:
    """Run ``work`` with the key service and the limiter the gateways share — Redis, read to
    say where buckets stand; None without ``redis.url``, when each gateway holds its own —
    closed after; a Redis that did not answer is a :class:`click.ClickException`."""

    async def go(svc: KeyService) -> T:
        if not settings.redis.url:
            return await work(svc, None)
        limiter = build_limiter(settings.redis.url, settings.limits)
        try:
            return await work(svc, limiter)
        finally:
            await limiter.close()

    try:
        return run(settings, go)
    except GatewayError as exc:  # Redis did not answer
        raise click.ClickException(exc.message) from None


def change(ctx: click.Context, key_id: str, work: Callable[[KeyService], Awaitable[T | None]]) -> T:
    """Run one change to an active key and return what it returns: a bad value names its
    field; no such key (``work`` returned None or False) says so."""
    try:
        out = run(settings_from(ctx), work)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if out is None or out is False:
        raise click.ClickException(f"no active key with id {key_id}")
    return out


def parse_expiry(expires_in: str | None, expires_at: str | None) -> datetime | None:
    """``--expires-in`` / ``--expires-at`` as a UTC time (checked further by the key service)."""
    if expires_in and expires_at:
        raise click.BadParameter("give --expires-in or --expires-at, not both")
    if expires_in:
        n, unit = expires_in[:-1], expires_in[-1:]
        if not n.isdigit() or unit not in UNITS:
            raise click.BadParameter("--expires-in: a whole number and s, m, h or d, e.g. 90d")
        return datetime.now(UTC) + timedelta(seconds=int(n) * UNITS[unit])
    if expires_at:
        try:
            return parse_utc(expires_at)
        except ValueError:
            raise click.BadParameter(
                "--expires-at: ISO 8601, e.g. 2027-03-31 or 2027-03-31T17:00:00+10:00"
            ) from None
    return None


def parse_budget(dollars: float | None) -> int | None:
    """``--budget-usd`` (or ``keys budget``'s dollars) in micro-dollars, checked."""
    try:
        return validate_budget(dollars)
    except ValueError as exc:
        raise click.BadParameter(str(exc).replace("budget_usd", "--budget-usd")) from None


def usd_text(microusd: int) -> str:
    return "none" if microusd == 0 else dollars_text(microusd)


def limit_text(value: int | None) -> str:
    return "default" if value is None else "unlimited" if value == 0 else str(value)
