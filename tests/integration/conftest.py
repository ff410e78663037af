"""Fixtures shared by the integration tests that run on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def own_pg() -> Iterator[str]:
    """A PostgreSQL database of the module's own: migrations there must not meet tables other
    tests made (or made without the migrations)."""
    from tests.support.services import create_pg_database, drop_pg_database

    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test once on a SQLite file of its own and once on the module's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return str(request.getfixturevalue("own_pg"))
