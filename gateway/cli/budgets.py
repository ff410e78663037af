"""``portcullis budgets``: the spend budgets in force and what each has spent this period
(gateway.budgets), read from the ledger in the gateway's database."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.budget_report import report
from gateway.budgets import Budgets
from gateway.cli._common import settings_from
from gateway.cli.key_call import run
from gateway.keys import KeyService

__all__ = ["budgets"]


@click.command("budgets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /admin/budgets).")
@click.pass_context
def budgets(ctx: click.Context, as_json: bool) -> None:
    """The spend budgets in force and what each has spent this period. Read from the ledger:
    a running replica's charges of the last budgets.sync_s may not be in it yet."""
    settings = settings_from(ctx)

    async def work(svc: KeyService) -> dict[str, Any]:
        return await report(await svc.list(), Budgets(svc.engine), settings.budgets)

    out = run(settings, work)
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"period {out['period']}, renews at {out['renews_at']}")
    if not out["data"]:
        click.echo("no spend budget is in force")
    for row in out["data"]:
        if row["scope"] in ("team", "tenant"):
            whose = row[row["scope"]]
        elif row["scope"] == "user":
            whose = f"{row['user']} ({row['tenant']})"
        else:
            whose = ",".join(row["key_ids"]) + ("" if row["own"] else " (default)")
        click.echo(
            f"{row['scope']}\t{whose}\tUS${row['spent_usd']:,.2f} of US${row['limit_usd']:,.2f}"
            f"\tUS${row['remaining_usd']:,.2f} left"
            + ("" if row["period"] == out["period"] else f"\tper {row['period']}")
        )
