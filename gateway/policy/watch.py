"""Polling file watcher for the bundle and overlays (no extra dependency; a few stats a second)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

__all__ = ["snapshot", "watch_loop"]

log = logging.getLogger("portcullis.policy")


def snapshot(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every .rego and .json file under ``paths``."""
    out: list[tuple[str, int, int]] = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix in (".rego", ".json") and p.is_file():
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


async def watch_loop(
    paths: Iterable[Path],
    interval_s: float,
    on_change: Callable[[], Awaitable[None]],
    initial: tuple[tuple[str, int, int], ...] | None = None,
) -> None:
    """Call ``on_change`` after any change since ``initial`` (take it before loading the bundle,
    so an edit made while the engine was being built is not missed)."""
    roots = tuple(Path(p) for p in paths)
    last = initial if initial is not None else await asyncio.to_thread(snapshot, roots)
    while True:
        await asyncio.sleep(interval_s)
        try:
            now = await asyncio.to_thread(snapshot, roots)
        except OSError:
            log.warning("policy watcher could not read the bundle directory")
            continue
        if now != last:
            last = now
            await on_change()
