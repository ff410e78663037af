"""ASGI entry point for servers: ``uvicorn --factory gateway.asgi:app``.

Reads the configuration named by ``PORTCULLIS_CONFIG`` (and ``PORTCULLIS_*`` overrides) when
the factory is called, never at import time.
"""

from __future__ import annotations

import os

from litestar import Litestar

from gateway.config import load_settings
from gateway.http.app import create_app

__all__ = ["app"]


def app() -> Litestar:
    path = os.environ.get("PORTCULLIS_CONFIG") or None
    return create_app(
        load_settings(path),
        freeze_heap=True,
        # kill -HUP / POST /admin/config/reload read the same file and environment again
        reload_from=lambda: load_settings(path),
    )
