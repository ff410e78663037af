"""The compliance console: a static single-page app over the admin API.

Three files under ``static/`` (no build step, no third-party assets), read once and served at
``/console/`` by :mod:`gateway.http.console`. The page holds no data and no secret: it asks for
an admin token or an API key with the ``admin`` or ``auditor`` role, keeps it in the tab's
``sessionStorage`` and sends it as a bearer token to ``/admin/...``, so every action is checked,
scoped and recorded by the same routes the CLI and scripts use.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["Asset", "assets"]

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str


def assets() -> dict[str, Asset]:
    """The console's files by name (``index.html``, ``console.js``, ``console.css``)."""
    static = resources.files(__name__) / "static"
    return {
        name: Asset(static.joinpath(name).read_bytes(), media) for name, media in _TYPES.items()
    }
