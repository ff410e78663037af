"""Which database errors mean "the database did not answer" (a 503) and which are errors in what
was asked (still a 500): ``gateway.storage.db.is_outage``."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from gateway.storage.db import is_outage


def _wrapped(
    cls: type[sa_exc.DBAPIError], invalidated: bool = False, sqlstate: str | None = None
) -> sa_exc.DBAPIError:
    """A driver error as SQLAlchemy wraps it; with ``sqlstate``, as asyncpg's is: on the
    error the adapter raises from it (its ``__cause__``)."""
    driver = Exception("driver")
    if sqlstate is not None:
        cause = Exception("asyncpg")
        cause.sqlstate = sqlstate  # type: ignore[attr-defined]
        driver.__cause__ = cause
    return cls("SELECT 1", {}, driver, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        sa_exc.TimeoutError("QueuePool limit reached"),
        _wrapped(sa_exc.OperationalError),
        _wrapped(sa_exc.InterfaceError),
        _wrapped(sa_exc.DBAPIError, invalidated=True),
        _wrapped(sa_exc.DBAPIError, sqlstate="57P03"),  # "the database system is starting up"
        _wrapped(sa_exc.DBAPIError, sqlstate="57P01"),  # terminated by the administrator
        _wrapped(sa_exc.DBAPIError, sqlstate="53300"),  # too many connections
        _wrapped(sa_exc.DBAPIError, sqlstate="08006"),  # connection failure
        _wrapped(sa_exc.DBAPIError, sqlstate="25006"),  # a write sent to a read-only standby
    ],
    ids=repr,
)
def test_the_database_not_answering_is_an_outage(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sa_exc.IntegrityError),
        _wrapped(sa_exc.ProgrammingError),
        _wrapped(sa_exc.DBAPIError),
        _wrapped(sa_exc.DBAPIError, sqlstate="23505"),  # a unique violation
        _wrapped(sa_exc.DBAPIError, sqlstate="42P01"),  # no such table
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=repr,
)
def test_an_error_in_what_was_asked_is_not(error: BaseException) -> None:
    assert not is_outage(error)
