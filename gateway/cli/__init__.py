"""The ``portcullis`` command line.

Command groups live in their own modules and are attached here: ``serve``, ``keys`` and ``db``
(gateway core), ``policy`` (gateway.cli.policy), ``audit`` (gateway.cli.audit) and ``runtime``
(inference.cli).
"""

from __future__ import annotations

import importlib

import click

__all__ = ["cli", "main"]

# (module, attribute) of each command group or command to attach to the root.
_GROUPS: tuple[tuple[str, str], ...] = (
    ("gateway.cli.serve", "serve"),
    ("gateway.cli.keys", "keys"),
    ("gateway.cli.db", "db"),
    ("gateway.cli.policy", "policy"),
    ("gateway.cli.audit", "audit"),
    ("inference.cli", "runtime"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="PORTCULLIS_CONFIG",
    default=None,
    help="Configuration file (YAML). Default: embedded defaults.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Portcullis: a data-governance gateway for LLM traffic."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


def _attach() -> None:
    for module_name, attr in _GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that component is not built in this checkout
                continue
            raise
        cli.add_command(getattr(module, attr))


_attach()


def main() -> None:
    cli(prog_name="portcullis")
