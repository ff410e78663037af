"""Which database errors mean "the database did not answer" (a 503) and which are errors in what
was asked (still a 500): ``gateway.storage.db.is_outage``."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from gateway.storage.db import is_outage


def _wrapped(cls: type[sa_exc.DBAPIError], invalidated: bool = False) -> sa_exc.DBAPIError:
    return cls("SELECT 1", {}, Exception("driver"), connection_invalidated=invalidated)


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
        ValueError("a bug"),
        KeyError("a bug"),
    ],
    ids=repr,
)
def test_an_error_in_what_was_asked_is_not(error: BaseException) -> None:
    assert not is_outage(error)
