"""``portcullis check``: try a configuration's dependencies before serving it.

Each check says ``ok``, ``warn`` or ``fail`` and why, in words an operator can act on:

- the configuration (it loaded and validated; its hash, as every audit record will carry it);
- the server secret (where the configuration names one: there and readable);
- the database (it answers; its schema's revision against the newest: migrations to apply are
  a warning, ``serve`` applies them) and a separate audit database if one is set;
- Redis, where configured (it answers a PING and runs a script, as the limiter needs);
- the policy engine (the embedded bundle compiles, or the OPA sidecar answers);
- each backend: its credential is there if one is configured, and ``GET base_url + path``
  (its health check's path, ``/models`` by default) answers 2xx with it — a 401 or 403 says the
  credential was refused, a 404 that the path is not served (a warning: requests may still
  work), no answer or a TLS failure that it cannot be reached;
- where configured, single sign-on (the provider and the client secret), the tracing collector
  and each budget webhook (:mod:`gateway.cli.check_services`).

Nothing is sent that carries content, nothing is written (no migration, no key, no secret
made), and no secret is printed: database URLs are shown without their passwords. Exits 1 when
a check fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from gateway.cli._common import settings_from
from gateway.cli.check_services import Result, services
from gateway.config import Settings

__all__ = ["check"]


def _url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _database(url: str, name: str, timeout_s: float) -> Result:
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from gateway.storage.db import create_engine_for
    from gateway.storage.migrate import alembic_config

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():  # connecting would make it: a check writes nothing
            return Result(
                name,
                "warn",
                f"{_url(url)} is not made yet: `portcullis db upgrade` or serve makes it",
            )
    engine = create_engine_for(url, 1, timeout_s)
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            current = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    except Exception as exc:  # noqa: BLE001 - any failure: it does not answer
        return Result(name, "fail", f"{_url(url)} does not answer ({type(exc).__name__})")
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current == head:
        return Result(name, "ok", f"{_url(url)} at revision {current} (the newest)")
    return Result(
        name,
        "warn",
        f"{_url(url)} at revision {current or 'none'}, the newest is {head}: "
        "`portcullis db upgrade` (serve applies it unless --no-migrate)",
    )


async def _redis(url: str, timeout_s: float) -> Result:
    import redis.asyncio as aioredis

    client: Any = aioredis.from_url(url, socket_connect_timeout=timeout_s)
    shown = _url(url)
    try:
        async with asyncio.timeout(timeout_s):
            t0 = time.perf_counter()
            await client.ping()
            await client.eval("return 1", 0)  # the limiter runs scripts
            ms = (time.perf_counter() - t0) * 1000
        return Result("redis", "ok", f"{shown} answers and runs scripts ({ms:.1f} ms)")
    except Exception as exc:  # noqa: BLE001 - any failure: not usable
        return Result(
            "redis", "fail", f"{shown} does not answer or run scripts ({type(exc).__name__})"
        )
    finally:
        await client.aclose()


async def _policy(settings: Settings, timeout_s: float) -> Result:
    from gateway.policy.client import build_policy_client

    engine = settings.policy.engine
    try:
        async with asyncio.timeout(max(timeout_s, 30.0)):  # the embedded bundle compiles
            client = await build_policy_client(settings.policy)
            try:
                ready = await client.ready()
            finally:
                await client.close()
    except Exception as exc:  # noqa: BLE001 - any failure: no decisions
        return Result(
            "policy", "fail", f"the {engine} engine gave no decision ({type(exc).__name__})"
        )
    if not ready:
        return Result("policy", "fail", f"the {engine} engine is not ready")
    return Result("policy", "ok", f"the {engine} engine is ready")


async def _backends(settings: Settings, timeout_s: float) -> list[Result]:
    from gateway.config.backends import HealthCheck
    from gateway.reload import backend_credentials
    from gateway.upstream import Upstream

    credentials, unusable = backend_credentials(settings.backends)
    upstream = Upstream(credentials)
    await upstream.start()
    out = []
    try:
        probed = []
        for b in settings.backends:
            name = f"backend {b.id}"
            if b.id in unusable:
                where = b.credential.env or b.credential.file
                out.append(Result(name, "fail", f"its credential ({where}) is missing or empty"))
                continue
            probed.append(b)
        # its health check's path, else the one a health check would read
        paths = {b.id: (b.health_check or HealthCheck()).path for b in probed}
        found = await asyncio.gather(*(upstream.probe(b, paths[b.id], timeout_s) for b in probed))
        for b, p in zip(probed, found, strict=True):
            name, what = f"backend {b.id}", f"GET {b.base_url}{paths[b.id]}"
            if p.ok:
                out.append(Result(name, "ok", f"{what}: {p.status} in {p.seconds * 1000:.0f} ms"))
            elif p.status in (401, 403):
                out.append(Result(name, "fail", f"{what}: {p.status}, the credential was refused"))
            elif p.status in (404, 405):
                out.append(
                    Result(
                        name,
                        "warn",
                        f"{what}: {p.status}, reachable but the path is not served "
                        "(set backends[].health_check.path to one it serves)",
                    )
                )
            elif p.status is not None:
                out.append(Result(name, "fail", f"{what}: {p.status}"))
            elif p.kind == "timeout":
                out.append(Result(name, "fail", f"{what}: no answer within {timeout_s:g} s"))
            else:
                out.append(Result(name, "fail", f"{what}: cannot be reached ({p.kind})"))
    finally:
        await upstream.close()
    return out


def _secret(settings: Settings) -> Result:
    import os

    keys = settings.keys
    if keys.secret_env:
        ok = bool(os.environ.get(keys.secret_env))
        detail = f"environment variable {keys.secret_env} " + ("is set" if ok else "is empty")
        return Result("server secret", "ok" if ok else "fail", detail)
    path = keys.secret_file or settings.data_dir / "secret.key"
    if path.is_file() and os.access(path, os.R_OK):
        return Result("server secret", "ok", f"{path} is there")
    if keys.secret_file is not None:
        return Result("server secret", "fail", f"keys.secret_file {path} is missing or unreadable")
    return Result("server secret", "ok", f"{path} will be made at the first start")


async def _run(settings: Settings, config: str | None, timeout_s: float) -> list[Result]:
    from gateway.admission import shadow_switches
    from gateway.config_archive import config_hash

    results = [
        Result(
            "configuration", "ok", f"{config or 'embedded defaults'}, hash {config_hash(settings)}"
        ),
        _secret(settings),
    ]
    if switches := shadow_switches(settings):  # a trial left on leaves the limits unenforced
        results.append(
            Result(
                "shadow mode",
                "warn",
                f"{' and '.join(switches)} on: what they would refuse is let through and "
                "recorded, not refused",
            )
        )
    url = settings.database_url()
    checks = [_database(url, "database", timeout_s), _policy(settings, timeout_s)]
    if settings.audit.database_url and settings.audit.database_url != url:
        checks.append(_database(settings.audit.database_url, "audit database", timeout_s))
    if settings.redis.url:
        checks.append(_redis(settings.redis.url, timeout_s))
    results += await asyncio.gather(*checks)
    backends, others = await asyncio.gather(
        _backends(settings, timeout_s), services(settings, timeout_s)
    )
    return results + backends + others


@click.command("check")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds each check may take.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check(ctx: click.Context, timeout: float, as_json: bool) -> None:
    """Try the configuration's dependencies (database, Redis, policy engine, every backend
    with its credential, and where configured single sign-on, the tracing collector and the
    budget webhooks) before serving it; exits 1 if one fails. Writes nothing, sends no content,
    prints no secret."""
    settings = settings_from(ctx)
    config = (ctx.find_root().obj or {}).get("config_path")
    quiet = logging.getLogger("portcullis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the checks say it, once
    try:
        results = asyncio.run(_run(settings, config, timeout))
    finally:
        quiet.setLevel(level)
    failed = any(r.status == "fail" for r in results)
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [asdict(r) for r in results]}))
    else:
        width = max(len(r.check) for r in results)
        for r in results:
            click.echo(f"{r.status:<5} {r.check:<{width}}  {r.detail}")
    if failed:
        ctx.exit(1)
