"""``portcullis limits``: the limits people's, teams' and tenants' keys share, and where each
stands now (gateway.limits_report), read from Redis."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.cli._common import settings_from
from gateway.cli.key_call import read_limits
from gateway.keys import KeyService
from gateway.limiter import Limiter

__all__ = ["limits"]


@click.command("limits")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /admin/limits).")
@click.pass_context
def limits(ctx: click.Context, as_json: bool) -> None:
    """The limits people's, teams' and tenants' keys share (limits.user/users/teams/tenants)
    and what each one's buckets hold now, from Redis (every replica's; without redis.url each
    gateway holds its own: ask one, GET /admin/limits)."""
    from gateway.limits_report import shared_limits

    settings = settings_from(ctx)

    async def work(svc: KeyService, limiter: Limiter | None) -> dict[str, Any]:
        return await shared_limits(await svc.list(), limiter, settings)

    out = read_limits(settings, work)
    if as_json:
        click.echo(json.dumps(out))
        return
    d = out["key_defaults"]
    click.echo(
        f"each key (unless its own): {_rates(d)}"
        + ("\ta minute counted as a sliding window" * (out["window"] == "sliding"))
        + ("\tSHADOW MODE: refuses nothing" * out["shadow"])
    )
    if not out["data"]:
        click.echo("no limit is shared by people's, teams' or tenants' keys")
    for row in out["data"]:
        whose = row[row["scope"]] + (f" ({row['tenant']})" if row["scope"] == "user" else "")
        now = row["standing"]
        left = (
            "now: not known here (without redis.url each gateway holds its own: GET /admin/limits)"
            if now is None
            else "now: " + _left(row, now)
        )
        click.echo(f"{row['scope']}\t{whose}\t{_rates(row)}\t{left}")


def _rates(r: dict[str, Any]) -> str:
    parts = [
        f"{r['requests_per_minute']} requests/min" if r["requests_per_minute"] else "",
        f"{r['tokens_per_minute']:,} tokens/min" if r["tokens_per_minute"] else "",
        f"{r['max_parallel']} in flight" if r["max_parallel"] else "",
    ]
    return ", ".join(p for p in parts if p) or "no limit"


def _left(row: dict[str, Any], now: dict[str, Any]) -> str:
    parts = [
        f"{now['requests_left']} requests left" if row["requests_per_minute"] else "",
        f"{now['tokens_left']:,} tokens left" if row["tokens_per_minute"] else "",
        f"{now['in_flight']} of {row['max_parallel']} in flight" if row["max_parallel"] else "",
    ]
    return ", ".join(p for p in parts if p) or "-"
