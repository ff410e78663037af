"""Shipping the trail to a log backend as it grows: OTLP/HTTP, at least once.

``portcullis audit ship --to http://collector:4318/v1/logs`` reads the log in ``seq`` order from
a cursor, posts the entries in batches as OTLP/JSON ``ExportLogsServiceRequest``s (the records
of :func:`audit.formats.otlp_record`: the entry's exact JSON as the body, ``portcullis.seq`` and
the leaf hash as attributes) and, once the receiver has accepted a batch (any 2xx), writes the
last ``seq`` to the cursor file (fsynced, replaced atomically). Appends are serialised on the
log's head row, so entries become visible in ``seq`` order and a cursor never passes one still
being written. A shipper killed between the
receiver's answer and the cursor's write sends that batch again on its next start: delivery is
**at least once**, and a receiver can drop repeats by ``portcullis.seq``. Nothing is skipped:
a batch the receiver refuses for good (a 4xx other than 408 and 429) stops the shipper with the
cursor where it was; 408, 429, 5xx and connection failures are tried again with a growing
pause (``Retry-After`` honoured, at most 60 s), forever while following, ``give_up`` times in a
row without ``--follow``. A receiver's partial success (``rejectedLogRecords``) is logged and
counted: OTLP says those records must not be sent again. A following shipper waits out a database
that does not answer the same way and goes on from its cursor.

Every shipment is on the record itself: an ``export`` entry by the shipper's actor when it
starts (phase ``ship``, the destination's host and port — never its path, query or headers —,
the cursor's ``seq``, the filter and scope) and one when it stops (phase ``ship_done``, the
count and the last ``seq`` sent). Header values (a collector's token) come from environment
variables and appear nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.export import ExportFilter, Scope, iter_rows, record_read
from audit.formats import otlp_record, otlp_request

__all__ = ["Destination", "ShipRefused", "ShipResult", "ship"]

log = logging.getLogger("portcullis.audit.ship")

MAX_PAUSE_S = 60.0


class ShipRefused(Exception):
    """The receiver refused a batch for good, or did not take it within ``give_up`` tries; the
    cursor is where it was. The message holds a status and a class, never a body."""


@dataclass(frozen=True)
class Destination:
    """Where to post: an ``http(s)`` URL without user information, and extra headers."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("--to: an http:// or https:// URL (an OTLP/HTTP logs endpoint)")
        if parts.username or parts.password:
            raise ValueError("--to: no user or password in the URL; send them as a --header")

    @property
    def host(self) -> str:
        """Host and port, for the record (the path and query may hold a token)."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"


@dataclass
class ShipResult:
    count: int = 0  # entries the receiver accepted
    batches: int = 0
    rejected: int = 0  # records a receiver's partial success refused
    last_seq: int = 0


def _read_cursor(path: Path, ident: dict[str, Any]) -> int:
    if not path.exists():
        return 0
    cur = json.loads(path.read_text(encoding="utf-8"))
    if cur.get("ident") != ident:
        raise ValueError(
            f"{path} is the cursor of another shipment (destination, filter or scope); "
            "use another --cursor or remove it"
        )
    return int(cur["after_seq"])


def _write_cursor(path: Path, ident: dict[str, Any], after_seq: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"ident": ident, "after_seq": after_seq}, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _pause(attempt: int, retry_after: str | None) -> float:
    if retry_after:
        try:
            return min(MAX_PAUSE_S, max(0.0, float(retry_after)))
        except ValueError:
            try:
                when = parsedate_to_datetime(retry_after).timestamp()
                return min(MAX_PAUSE_S, max(0.0, when - time.time()))
            except (TypeError, ValueError):
                pass
    return float(min(MAX_PAUSE_S, 0.5 * 2**attempt))


async def _post(
    session: aiohttp.ClientSession,
    dest: Destination,
    payload: bytes,
    give_up: int | None,
    stop: asyncio.Event,
) -> int | None:
    """Post one batch until it is taken; return the receiver's rejected record count, or None
    when ``stop`` was set while waiting to try again (the batch was not taken)."""
    attempt = 0
    while True:
        retry_after: str | None = None
        try:
            async with session.post(
                dest.url,
                data=payload,
                headers={**dest.headers, "Content-Type": "application/json"},
            ) as resp:
                body = await resp.read()
                if 200 <= resp.status < 300:
                    return _rejected(body)
                if resp.status not in (408, 429) and resp.status < 500:
                    raise ShipRefused(f"the receiver refused the batch: HTTP {resp.status}")
                retry_after = resp.headers.get("Retry-After")
                why = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            why = type(exc).__name__
        attempt += 1
        if give_up is not None and attempt >= give_up:
            raise ShipRefused(f"the receiver did not take the batch in {attempt} tries ({why})")
        pause = _pause(attempt - 1, retry_after)
        log.warning("audit ship: batch not taken (%s); trying again in %.1f s", why, pause)
        try:
            await asyncio.wait_for(stop.wait(), pause)
            return None
        except TimeoutError:
            pass


def _rejected(body: bytes) -> int:
    """``partialSuccess.rejectedLogRecords`` of an OTLP/JSON answer (0 when absent)."""
    try:
        doc = json.loads(body) if body.strip() else {}
        n = (doc.get("partialSuccess") or {}).get("rejectedLogRecords") or 0
        return int(n)
    except (ValueError, TypeError, AttributeError):
        return 0


async def ship(
    engine: AsyncEngine,
    dest: Destination,
    cursor: Path,
    flt: ExportFilter,
    scope: Scope,
    *,
    allowed_roles: tuple[str, ...] = ("admin", "auditor"),
    writer: str = "ship:0:0",
    batch: int = 500,
    follow: bool = False,
    interval_s: float = 2.0,
    give_up: int | None = 5,
    stop: asyncio.Event | None = None,
    timeout_s: float = 30.0,
) -> ShipResult:
    """Ship entries after the cursor until none are left (or, with ``follow``, until ``stop``
    is set). Raises :class:`ShipRefused`, :class:`audit.export.AuditForbidden`, ValueError."""
    scope.authorise(allowed_roles)
    stop = stop or asyncio.Event()
    ident = {"to": dest.url, "filter": flt.to_json(), "scope": scope.to_json()}
    after = _read_cursor(cursor, ident)
    result = ShipResult(last_seq=after)
    await record_read(
        engine,
        writer,
        scope,
        flt,
        {"phase": "ship", "format": "otlp", "destination": dest.host, "after_seq": after},
    )
    summary_at = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(5.0, timeout_s))

    async def available(session: aiohttp.ClientSession) -> int:
        """Ship what is after the cursor now; the number of entries sent."""
        sent = 0
        async for rows in iter_rows(engine, flt, scope, result.last_seq, None, batch):
            records = [
                otlp_record(seq, kind, json.loads(body) if body else None, leaf)
                for seq, kind, body, leaf in rows
            ]
            payload = json.dumps(
                otlp_request(records), separators=(",", ":"), ensure_ascii=True
            ).encode()
            rejected = await _post(session, dest, payload, None if follow else give_up, stop)
            if rejected is None:
                break  # stopped while the receiver was not taking it
            _write_cursor(cursor, ident, rows[-1][0])
            if rejected:
                log.warning(
                    "audit ship: the receiver took the batch but rejected %d of its %d records "
                    "(seq %d-%d); they are not sent again",
                    rejected,
                    len(rows),
                    rows[0][0],
                    rows[-1][0],
                )
            result.count += len(rows)
            result.batches += 1
            result.rejected += rejected
            result.last_seq = rows[-1][0]
            sent += len(rows)
            if stop.is_set():
                break
        return sent

    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            unread = 0  # reads of the trail that failed in a row (following)
            while not stop.is_set():
                try:
                    sent = await available(session)
                    unread = 0
                except (SQLAlchemyError, OSError) as exc:
                    if not follow:
                        raise
                    # The database is down or restarting: a follower waits for it, as for a
                    # receiver that is down, and goes on from the cursor.
                    unread += 1
                    pause = _pause(unread - 1, None)
                    log.warning(
                        "audit ship: the trail could not be read (%s); trying again in %.1f s",
                        type(exc).__name__,
                        pause,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
                    continue
                if not follow:
                    break
                if time.monotonic() - summary_at >= 60.0:
                    log.info(
                        "audit ship: %d entries shipped to %s, up to seq %d",
                        result.count,
                        dest.host,
                        result.last_seq,
                    )
                    summary_at = time.monotonic()
                if not sent:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        done = {
            "phase": "ship_done",
            "format": "otlp",
            "destination": dest.host,
            "count": result.count,
            "last_seq": result.last_seq,
        }
        try:
            await record_read(engine, writer, scope, flt, done)
        except Exception as exc:  # noqa: BLE001 - the shipment's own outcome matters more
            log.error("audit ship: its closing entry was not recorded (%s)", type(exc).__name__)
    return result
