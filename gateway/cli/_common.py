"""Helpers shared by the CLI commands: settings from the root group, errors as exit codes."""

from __future__ import annotations

from typing import Any

import click

from gateway.config import ConfigError, Settings, load_settings

__all__ = ["settings_from"]


def settings_from(ctx: click.Context) -> Settings:
    root: Any = ctx.find_root().obj or {}
    try:
        return load_settings(root.get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
