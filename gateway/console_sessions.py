"""Console sessions from single sign-on (:mod:`gateway.sso`): what a session token (``pcc_…``)
carries and the principal it acts as (``sso:<user>``), and the sessions ended before they
expired — by their holder signing out, or by an administrator ending a person's sessions. Ended
sessions are kept in the ``console_session_ends`` table, read on each admin call a session
makes, so every replica sees an end at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.principal import Principal
from gateway.storage.schema import console_session_ends as _ENDS

__all__ = ["SESSION_PREFIX", "SessionEnds", "session_payload", "session_principal"]

SESSION_PREFIX = "pcc_"


def session_payload(principal: Principal, sid: str, ttl_s: int) -> dict[str, Any]:
    """What a session token for the principal carries, signed: it begins now (``iat``) and
    expires ``ttl_s`` later (``exp``, Unix seconds)."""
    now = int(time.time())
    return {
        "v": 1,
        "sid": sid,
        "iat": now,
        "user": principal.user,
        "jurisdiction": principal.jurisdiction,
        "sector": principal.sector,
        "team": principal.team,
        "tenant": principal.tenant,
        "roles": list(principal.roles),
        "tags": list(principal.tags),
        "exp": now + ttl_s,
    }


def session_principal(payload: dict[str, Any]) -> Principal:
    """The principal a verified session payload names (``sso:<user>`` as its id; the session's
    id and expiry in ``extra``, for signing out)."""
    return Principal(
        key_id=f"sso:{payload['user']}",
        user=payload["user"],
        jurisdiction=payload["jurisdiction"],
        sector=payload["sector"],
        team=payload.get("team"),
        tenant=payload.get("tenant") or "default",  # sessions from before it was kept
        roles=tuple(payload["roles"]),
        tags=tuple(payload["tags"]),
        extra={"session": payload["sid"], "session_expires": payload["exp"]},
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SessionEnds:
    """The sessions ended before they expired, in the database (``console_session_ends``)."""

    def __init__(self, engine: AsyncEngine, ttl_s: int) -> None:
        self._engine = engine
        self._ttl_s = ttl_s  # how long a session lives: its end is kept that long, and a minute

    async def ended(self, sid: str, user: str, began: int) -> bool:
        """Whether the session ``sid`` of ``user``, begun at ``began`` (Unix seconds), was
        ended: itself, or every session of its person begun until then."""
        since = datetime.fromtimestamp(began, UTC)
        query = sa.select(_ENDS.c.subject, _ENDS.c.ended_at).where(
            _ENDS.c.subject.in_([f"sid:{sid}", f"user:{user}"])
        )
        async with self._engine.connect() as conn:
            for subject, ended_at in (await conn.execute(query)).all():
                if subject.startswith("sid:") or _utc(ended_at) >= since:
                    return True
        return False

    async def end(self, *, sid: str | None = None, user: str | None = None) -> datetime:
        """End one session (``sid``: its holder signs out) or every session of ``user`` begun
        until now (an administrator cuts them off). Returns when. Rows no longer needed (every
        session they end has expired) are dropped at the same time."""
        assert (sid is None) != (user is None)
        now = datetime.now(UTC)
        subject = f"sid:{sid}" if sid is not None else f"user:{user}"
        keep = now + timedelta(seconds=self._ttl_s + 60)
        async with self._engine.begin() as conn:
            await conn.execute(_ENDS.delete().where(_ENDS.c.expires_at < now))
            await conn.execute(_ENDS.delete().where(_ENDS.c.subject == subject))
            await conn.execute(
                _ENDS.insert().values(subject=subject, ended_at=now, expires_at=keep)
            )
        return now
