"""Work given up on but not waited for: a call past its deadline whose clean-up may itself wait
on a service that does not answer (a frozen database); and a background loop stopped for good
(:func:`stop`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["abandon", "stop"]

_STRAYS: set[asyncio.Future[Any]] = set()  # kept referenced until they finish


def abandon(work: asyncio.Future[Any]) -> None:
    """Cancel ``work`` and let it finish on its own: referenced until then, and its late outcome
    retrieved (a failure of work already answered for is not an unhandled error)."""
    work.cancel()
    _STRAYS.add(work)
    work.add_done_callback(_forget)


def _forget(work: asyncio.Future[Any]) -> None:
    _STRAYS.discard(work)
    if not work.cancelled():
        work.exception()


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background loop and wait until it has ended (its cancellation is the expected
    end, not an error). None: nothing to stop."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
