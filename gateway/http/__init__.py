"""The HTTP surface: app factory, OpenAI-compatible routes, admin API, error rendering."""

from __future__ import annotations

from gateway.http.app import create_app

__all__ = ["create_app"]
