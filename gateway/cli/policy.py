"""``portcullis policy``: run the pack's Rego tests, ask what-if questions, build an OPA bundle."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateway.cli._common import settings_from

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """The jurisdiction policy: tests, what-if evaluation, OPA bundle."""


def _overlay_paths(ctx: click.Context, extra: tuple[str, ...]) -> tuple[Path, ...]:
    settings = settings_from(ctx)
    return tuple(settings.policy.overlays) + tuple(Path(p) for p in extra)


@policy.command("test")
@click.option("--bundle", "bundle_dir", type=click.Path(file_okay=False), default=None)
@click.option("--overlay", "overlays", multiple=True, type=click.Path(file_okay=False))
@click.option("--verbose", "-v", is_flag=True, help="List every test, not only failures.")
@click.pass_context
def test_cmd(
    ctx: click.Context, bundle_dir: str | None, overlays: tuple[str, ...], verbose: bool
) -> None:
    """Run the Rego tests (pack, then each overlay's own) with the embedded engine."""
    from gateway.policy.testing import run_tests

    settings = settings_from(ctx)
    root = Path(bundle_dir) if bundle_dir else settings.policy.bundle
    report = run_tests(root, _overlay_paths(ctx, overlays))
    for o in report.outcomes:
        if verbose or not o.passed:
            mark = "PASS" if o.passed else "FAIL"
            click.echo(f"{mark} {o.module}::{o.name}" + (f"  {o.detail}" if o.detail else ""))
    click.echo("coverage:")
    for path, pct in report.coverage().items():
        click.echo(f"  {pct:5.1f}%  {path}")
    click.echo(
        f"{report.passed} passed, {report.failed} failed; "
        f"line coverage {report.total_coverage():.1f}%"
    )
    if not report.ok:
        sys.exit(1)


def _explain(decision: dict[str, Any]) -> str:
    lines = [
        f"allow: {str(decision['allow']).lower()}",
        f"permitted backends: {', '.join(decision['permitted_backends']) or '(none)'}",
        f"bundle revision: {decision['bundle_revision']}",
    ]
    for b, acts in sorted(decision["pii_actions"].items()):
        lines.append(f"pii {b}: " + ", ".join(f"{e}={a}" for e, a in sorted(acts.items())))
    for r in decision["reasons"]:
        who = ", ".join(r["backends"]) if r["backends"] is not None else "all backends"
        lines.append(f"[{r['effect']}] {r['rule']} ({who})")
        lines.append(f"    {r['message']}")
        c = r.get("citation")
        if c:
            lines.append(
                f"    cite: {c['authority']}; {c['instrument']}; {c.get('date') or 'date n/a'}; "
                f"{c.get('url') or ''} (confidence {c.get('confidence') or 'n/a'})"
            )
    return "\n".join(lines)


@policy.command("eval")
@click.option("--jurisdiction", "-j", required=True, help="ISO 3166-1 or 3166-2, e.g. AU or AU-NSW")
@click.option("--sector", "-s", required=True, help="A sector from docs/principals.md")
@click.option("--team", default=None)
@click.option("--model", "-m", default=None, help="Candidates: the catalogue's backends serving it")
@click.option("--backend", "-b", "backend_ids", multiple=True, help="Candidates by backend id")
@click.option(
    "--at", "at", default=None, help="Evaluation time (RFC 3339 or YYYY-MM-DD); default now"
)
@click.option("--stance", type=click.Choice(["cautious", "permit"]), default=None)
@click.option("--pii", "pii", multiple=True, help="ENTITY=COUNT found in the request (final phase)")
@click.option(
    "--marking",
    type=click.Choice(["official", "sensitive", "protected", "secret", "top_secret"]),
    default=None,
    help="The security classification marking the request carries",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_cmd(
    ctx: click.Context,
    jurisdiction: str,
    sector: str,
    team: str | None,
    model: str | None,
    backend_ids: tuple[str, ...],
    at: str | None,
    stance: str | None,
    pii: tuple[str, ...],
    marking: str | None,
    as_json: bool,
) -> None:
    """What-if: the decision for a principal, model/backends and time, with its explanation."""
    from gateway.policy.client import build_engine
    from gateway.policy.contract import parse_decision
    from gateway.policy.input import what_if_input
    from gateway.principal import SECTORS, Principal, parse_jurisdiction

    settings = settings_from(ctx)
    try:
        country, sub = parse_jurisdiction(jurisdiction)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--jurisdiction") from None
    if sector not in SECTORS:
        raise click.BadParameter(f"one of {', '.join(SECTORS)}", param_hint="--sector")
    backends = list(settings.backends)
    if backend_ids:
        known = {b.id: b for b in backends}
        missing = [b for b in backend_ids if b not in known]
        if missing:
            raise click.BadParameter(
                f"not in the catalogue: {', '.join(missing)}", param_hint="--backend"
            )
        backends = [known[b] for b in backend_ids]
    if model:
        backends = [b for b in backends if model in b.models or model in b.aliases]
    if not backends:
        raise click.ClickException("no candidate backends (configure backends or pass --backend)")
    when = datetime.now(UTC)
    if at:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter("RFC 3339 or YYYY-MM-DD", param_hint="--at") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    counts: dict[str, int] | None = None
    if pii:
        counts = {}
        for item in pii:
            name, _, n = item.partition("=")
            counts[name.strip().upper()] = int(n or "1")
    pol = (
        settings.policy
        if stance is None
        else settings.policy.model_copy(update={"self_hosted_stance": stance})
    )
    principal = Principal(
        key_id="what-if", user="what-if", jurisdiction=sub or country, sector=sector, team=team
    )
    inp = what_if_input(principal, backends, model, counts, when, pol, marking)

    async def run() -> dict[str, Any]:
        engine = await build_engine(pol)
        try:
            raw = await engine.evaluate(inp)
        finally:
            await engine.close()
        parse_decision(raw, tuple(b.id for b in backends))  # same validation as the gateway
        return dict(raw)

    decision = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({"input": inp, "decision": decision}, indent=2, sort_keys=True))
    else:
        click.echo(_explain(decision))


@policy.command("bundle")
@click.argument("dest", type=click.Path(dir_okay=False))
@click.pass_context
def bundle_cmd(ctx: click.Context, dest: str) -> None:
    """Write the pack plus configured overlays as an OPA bundle (.tar.gz) for the sidecar."""
    from gateway.policy.bundle import load_bundle, write_opa_bundle

    settings = settings_from(ctx)
    b = load_bundle(settings.policy.bundle, settings.policy.overlays)
    write_opa_bundle(b, Path(dest))
    click.echo(f"wrote {dest} revision {b.revision}")


def _attach_replay() -> None:
    # `policy replay` lives with the audit trail it reads (gateway.cli.replay).
    from gateway.cli.replay import replay

    policy.add_command(replay)


_attach_replay()
