"""``portcullis policy replay``: what would change if another bundle had decided past requests.

Attached by the lead under the ``policy`` group. Evaluates the stored decision inputs (no text
is stored, none is needed) with the embedded engine over ``--bundle`` and prints the difference
(requests, users, jurisdictions, rules, backends). Read-only: nothing is written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from audit.db import open_engine
from audit.replay import ReplayReport
from audit.replay import replay as run_replay
from gateway.cli._common import settings_from

__all__ = ["replay"]


def _utc(value: str | None) -> str | None:
    from gateway.cli.audit import _utc as to_utc

    return to_utc(value)


async def _run(
    url: str, policy_settings: Any, since: str | None, until: str | None
) -> ReplayReport:
    from gateway.policy.client import build_engine
    from gateway.policy.contract import parse_decision

    engine = await build_engine(policy_settings)
    db = open_engine(url)

    async def evaluate(policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        raw = await engine.evaluate(policy_input)
        candidates = tuple(str(b.get("id")) for b in policy_input.get("backends") or ())
        parse_decision(raw, candidates)  # a malformed decision counts as an error
        return raw

    try:
        return await run_replay(db, evaluate, since, until)
    finally:
        await engine.close()
        await db.dispose()


def _print(report: ReplayReport) -> None:
    click.echo(
        f"examined {report.examined} requests: {report.changed} would change "
        f"({report.newly_denied} newly denied, {report.newly_allowed} newly allowed, "
        f"{report.backends_changed} with other backends); {report.errors} evaluation errors, "
        f"{report.skipped} without a recorded decision"
    )
    for title, counter in (
        ("users", report.users),
        ("jurisdictions", report.jurisdictions),
        ("rules newly denying", report.rules),
        ("backends", report.backends),
    ):
        if counter:
            click.echo(f"{title}:")
            for name, n in counter.most_common(20):
                click.echo(f"  {n:8d}  {name}")


@click.command("replay")
@click.option(
    "--bundle", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--since", default=None, help="Inclusive, ISO 8601 (UTC if no offset).")
@click.option("--until", default=None, help="Exclusive, ISO 8601.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def replay(
    ctx: click.Context, bundle: Path, since: str | None, until: str | None, as_json: bool
) -> None:
    """Re-evaluate past decisions under BUNDLE and report what would change."""
    settings = settings_from(ctx)
    url = settings.audit.database_url or settings.database_url()
    policy = settings.policy.model_copy(
        update={"bundle": bundle, "engine": "embedded", "overlays": ()}
    )
    report = asyncio.run(_run(url, policy, _utc(since), _utc(until)))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        _print(report)
