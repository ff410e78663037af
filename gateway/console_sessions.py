"""Console sessions from single sign-on (:mod:`gateway.sso`): what a session token (``pcc_…``)
carries and the principal it acts as (``sso:<user>``), and the sessions ended before they
expired — by their holder signing out, by an administrator ending a person's sessions, or by
the provider (back-channel logout: its session ``sid`` or its subject ``sub`` ended). Ended
sessions are kept in the ``console_session_ends`` table, read on each admin call a session
makes, so every replica sees an end at once.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.principal import Principal
from gateway.storage.schema import console_session_ends as _ENDS

__all__ = [
    "SESSION_PREFIX",
    "SessionEnds",
    "provider_ref",
    "session_payload",
    "session_principal",
]

SESSION_PREFIX = "pcc_"


def provider_ref(kind: str, value: str) -> str:
    """How a provider's session (``sid``) or subject (``sub``) is named in a session and in the
    ended sessions' table: a digest, so neither the provider's identifier nor its length is
    kept, and every name fits the table's column."""
    return f"op-{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:40]


def session_payload(principal: Principal, sid: str, ttl_s: int) -> dict[str, Any]:
    """What a session token for the principal carries, signed: it begins now (``iat``) and
    expires ``ttl_s`` later (``exp``, Unix seconds); ``op``: the provider's subject and session
    it came from (:func:`provider_ref`), which a back-channel logout names."""
    now = int(time.time())
    return {
        "op": list(principal.extra.get("provider", ())),
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
        extra={
            "session": payload["sid"],
            "session_expires": payload["exp"],
            "provider": tuple(payload.get("op") or ()),  # none in sessions from before it was
        },
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class SessionEnds:
    """The sessions ended before they expired, in the database (``console_session_ends``)."""

    def __init__(self, engine: AsyncEngine, ttl_s: int) -> None:
        self._engine = engine
        self._ttl_s = ttl_s  # how long a session lives: its end is kept that long, and a minute

    async def ended(self, sid: str, user: str, began: int, provider: tuple[str, ...] = ()) -> bool:
        """Whether the session ``sid`` of ``user``, begun at ``began`` (Unix seconds), was
        ended: itself, or every session begun until then of its person or of the provider's
        session or subject it came from (``provider``: :func:`provider_ref` names)."""
        since = datetime.fromtimestamp(began, UTC)
        query = sa.select(_ENDS.c.subject, _ENDS.c.ended_at).where(
            _ENDS.c.subject.in_([f"sid:{sid}", f"user:{user}", *provider])
        )
        async with self._engine.connect() as conn:
            for subject, ended_at in (await conn.execute(query)).all():
                if subject.startswith("sid:") or _utc(ended_at) >= since:
                    return True
        return False

    async def end(
        self, *, sid: str | None = None, user: str | None = None, provider: str | None = None
    ) -> datetime:
        """End one session (``sid``: its holder signs out), every session of ``user`` begun
        until now (an administrator cuts them off), or every one begun until now from a
        provider's session or subject (``provider``: a :func:`provider_ref` name; back-channel
        logout). Returns when. Rows no longer needed (every session they end has expired) are
        dropped at the same time."""
        assert sum(x is not None for x in (sid, user, provider)) == 1
        now = datetime.now(UTC)
        subject = provider or (f"sid:{sid}" if sid is not None else f"user:{user}")
        keep = now + timedelta(seconds=self._ttl_s + 60)
        async with self._engine.begin() as conn:
            await conn.execute(_ENDS.delete().where(_ENDS.c.expires_at < now))
            await conn.execute(_ENDS.delete().where(_ENDS.c.subject == subject))
            await conn.execute(
                _ENDS.insert().values(subject=subject, ended_at=now, expires_at=keep)
            )
        return now

    async def first_use(self, jti: str, until: datetime) -> bool:
        """Whether a provider's logout token (its ``jti``) is seen for the first time on any
        replica; it is remembered until ``until``, past which the token is refused as too old
        anyway. A replayed token cannot end the sessions begun since it was first sent."""
        subject = "jti:" + hashlib.sha256(jti.encode()).hexdigest()[:40]
        async with self._engine.begin() as conn:
            await conn.execute(_ENDS.delete().where(_ENDS.c.expires_at < datetime.now(UTC)))
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        _ENDS.insert().values(
                            subject=subject, ended_at=datetime.now(UTC), expires_at=until
                        )
                    )
            except sa.exc.IntegrityError:
                return False
        return True
