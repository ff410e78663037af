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
    ("gateway.cli.budgets", "budgets"),
    ("gateway.cli.limits", "limits"),
    ("gateway.cli.db", "db"),
    ("gateway.cli.check", "check"),
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
    try:
        # Not standalone: a command's ``ctx.exit(code)`` comes back as the return value.
        code = cli(prog_name="portcullis", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        raise SystemExit(1) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # the command line's boundary: one line, no traceback
        message = _storage_error(exc)
        if message is None:
            raise
        click.echo(f"Error: {message}", err=True)
        raise SystemExit(1) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _storage_error(exc: BaseException) -> str | None:
    """What to tell the operator when the database cannot be used (no traceback, no URL: it
    may hold a password), or None for any other error."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.OperationalError | sa.exc.ProgrammingError):
        text = str(exc.orig) if exc.orig is not None else ""
        if "no such table" in text or "does not exist" in text:
            return (
                "the database has no Portcullis tables yet: run `portcullis db upgrade` "
                f"({type(exc.orig).__name__})"
            )
        return f"the database refused the operation ({type(exc.orig).__name__})"
    if isinstance(exc, OSError | sa.exc.DBAPIError | sa.exc.InterfaceError | TimeoutError):
        return (
            "the database (or Redis) could not be reached "
            f"({type(exc).__name__}); check database.url / redis.url and that the server runs"
        )
    return None
