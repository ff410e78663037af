"""Console sign-in through an OpenID Connect provider (``admin.sso``).

The flow is the authorisation code flow with PKCE (RFC 7636), the gateway as a confidential
client:

1. ``GET /console/sso/login`` sends the browser to the provider with a fresh ``state``, ``nonce``
   and code challenge; the three are kept in a short-lived cookie signed with a key derived from
   the server secret (:class:`Signer`), so any replica can finish the flow.
2. ``GET /console/sso/callback`` checks the cookie and ``state``, exchanges the code (with the
   verifier and the client secret) at the provider's token endpoint, and verifies the ID token:
   an asymmetric signature by a key of the provider's JWKS, issuer, audience, expiry, nonce.
3. The person's groups (``groups_claim``) map to console roles and audit-scope tags; someone in no
   mapped group is refused. The sign-in is recorded in the audit trail before the session is
   given (as a key's creation is), and the session is a bearer token (``pcc_…``, signed, expiring
   after ``session_ttl_s``) handed to the page in the URL fragment, which the browser never sends
   anywhere: the console keeps it as it keeps a pasted key (``sessionStorage``, no cookie).

A session token is accepted by the admin API only (never by ``/v1``) and acts as ``sso:<user>``
in the audit trail. It ends when it expires, when its holder signs out, when an administrator
ends a person's sessions (:meth:`OidcClient.end`), or when the provider says the person's
session there ended (OpenID Connect Back-Channel Logout 1.0: :meth:`OidcClient.provider_sign_out`
checks the provider's signed logout token; or Front-Channel Logout 1.0, through the person's
browser, by the provider session's ``sid``: :meth:`OidcClient.provider_session_ended`). Ends
are kept in the ``console_session_ends`` table, read on each admin call a session makes, so
every replica sees them at once. The session's payload and the ended sessions' store are
:mod:`gateway.console_sessions`; what is read from the provider and how its tokens are
checked, :mod:`gateway.oidc_provider`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.admin import SsoSettings
from gateway.console_sessions import (
    SESSION_PREFIX,
    SessionEnds,
    provider_ref,
    session_payload,
    session_principal,
)
from gateway.key_records import validate_principal_fields
from gateway.oidc_provider import LEEWAY_S, OidcProvider, SsoError, endpoint_ok
from gateway.principal import Principal, parse_jurisdiction
from gateway.secrets_store import ServerSecret
from gateway.signed import Signer, b64

__all__ = ["EXCHANGES_IN_FLIGHT", "SESSION_PREFIX", "STATE_COOKIE", "OidcClient", "SsoError"]

log = logging.getLogger("portcullis.sso")

STATE_COOKIE = "pcs_sso"
_STATE_TTL_S = 600  # from the redirect to the provider to the return: ten minutes
# Code exchanges in flight at once. The sign-in routes need no credential, and a state cookie is
# free to get: without a bound, junk codes would turn the gateway into a flood on the provider.
EXCHANGES_IN_FLIGHT = 8
# Back-Channel Logout 1.0, section 2.4: the event a logout token must carry.
_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# A logout token older than this (by its iat) is refused: providers send it at once, and its
# jti is remembered this long so a replay cannot end sessions begun since.
_LOGOUT_MAX_AGE_S = 600


_SID_MAX = 256  # a provider's session id is a GUID or a few dozen characters


class _PerMinute:
    """At most ``n`` a minute, taken as they come (a token bucket of ``n``, refilled ``n`` a
    minute): what bounds an unauthenticated call's writes."""

    def __init__(self, n: int) -> None:
        self._n, self._left, self._at = n, float(n), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._left = min(self._n, self._left + (now - self._at) * self._n / 60)
        self._at = now
        if self._left < 1:
            return False
        self._left -= 1
        return True


class OidcClient:
    """The gateway's side of the flow, for one configured provider."""

    def __init__(
        self, settings: SsoSettings, secret: ServerSecret, engine: AsyncEngine | None = None
    ) -> None:
        self.settings = settings
        self.sessions = Signer(secret, "console-session", SESSION_PREFIX)
        # where ended sessions are kept (None: none can be ended)
        self._ends = None if engine is None else SessionEnds(engine, settings.session_ttl_s)
        self._state = Signer(secret, "console-sso-state")
        self.provider = OidcProvider(settings)  # its metadata, keys and tokens
        self._exchanges = asyncio.Semaphore(EXCHANGES_IN_FLIGHT)
        self._front = _PerMinute(settings.frontchannel_logout_per_minute)

    @property
    def secure_cookie(self) -> bool:
        return self.settings.public_url.startswith("https://")

    async def close(self) -> None:
        await self.provider.close()

    async def verify_session(self, token: str) -> Principal | None:
        """The session's principal; None if it is forged, expired or was ended early."""
        payload = self.sessions.verify(token)
        if payload is None or payload.get("v") != 1 or not isinstance(payload.get("iat"), int):
            return None
        try:
            principal = session_principal(payload)
        except (KeyError, TypeError):
            return None
        provider = principal.extra["provider"]
        if not all(isinstance(ref, str) for ref in provider):
            return None
        if self._ends is not None and await self._ends.ended(
            payload["sid"], principal.user, payload["iat"], provider
        ):
            return None
        return principal

    async def end(self, *, sid: str | None = None, user: str | None = None) -> datetime:
        """End one session (``sid``: its holder signs out) or every session of ``user`` begun
        until now (an administrator cuts them off); :meth:`SessionEnds.end
        <gateway.console_sessions.SessionEnds.end>`. Returns when."""
        assert self._ends is not None
        return await self._ends.end(sid=sid, user=user)

    async def sign_out_url(self) -> str | None:
        """Where the browser goes so the provider ends its own session too (OpenID Connect
        RP-Initiated Logout 1.0): its ``end_session_endpoint`` with our ``client_id`` and the
        console as ``post_logout_redirect_uri``. None when ``sign_out_at_provider`` is off, or
        the provider names no such endpoint or cannot be read (logged): the gateway's session
        has ended either way. No ``id_token_hint``: the ID token is not kept."""
        if not self.settings.sign_out_at_provider:
            return None
        try:
            endpoint = (await self.provider.metadata()).get("end_session_endpoint")
        except SsoError as exc:
            log.warning("sign-out at the provider skipped: %s (%s)", exc.code, exc.message)
            return None
        if not isinstance(endpoint, str) or not endpoint_ok(endpoint, self.settings.issuer):
            log.warning("sign-out at the provider skipped: it names no usable end_session_endpoint")
            return None
        return _with_query(
            endpoint,
            {
                "client_id": self.settings.client_id,
                "post_logout_redirect_uri": self.settings.post_logout_redirect_uri,
            },
        )

    async def provider_sign_out(self, logout_token: str) -> str:
        """OpenID Connect Back-Channel Logout 1.0: the provider says a person's session there
        ended. The logout token is checked as an ID token is (a key of the provider's JWKS, an
        asymmetric algorithm, issuer, audience; no older than ten minutes) and must carry the
        logout event, a ``jti`` not seen before, no ``nonce``, and ``sid`` or ``sub``. Every
        console session begun until now from that provider session (``sid``), else from that
        subject (``sub``), ends. Returns which it was; :class:`SsoError` when refused."""
        if self._ends is None:
            raise SsoError("unsupported", "no store to keep ended sessions in")
        try:
            await asyncio.wait_for(self._exchanges.acquire(), self.settings.timeout_s)
        except TimeoutError:
            raise SsoError("busy", "too many sign-ins and sign-outs in progress") from None
        try:
            claims = await self.provider.verified(
                logout_token, "logout token", ["iat", "jti", "events"]
            )
        finally:
            self._exchanges.release()
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(_LOGOUT_EVENT), dict):
            raise SsoError("invalid_token", "logout token without the back-channel logout event")
        if "nonce" in claims:
            raise SsoError("invalid_token", "logout token with a nonce (an ID token?)")
        issued = claims["iat"]
        if not isinstance(issued, int | float) or issued < time.time() - _LOGOUT_MAX_AGE_S:
            raise SsoError("invalid_token", "logout token too old")
        jti, sid, sub = claims["jti"], claims.get("sid"), claims.get("sub")
        if not isinstance(jti, str) or not jti:
            raise SsoError("invalid_token", "logout token without a jti")
        if isinstance(sid, str) and sid:
            kind, value = "sid", sid
        elif isinstance(sub, str) and sub:
            kind, value = "sub", sub
        else:
            raise SsoError("invalid_token", "logout token names neither a sid nor a sub")
        until = datetime.fromtimestamp(issued + _LOGOUT_MAX_AGE_S + LEEWAY_S, UTC)
        if not await self._ends.first_use(jti, until):
            raise SsoError("invalid_token", "logout token already used (jti)")
        await self._ends.end(provider=provider_ref(kind, value))
        return kind

    async def provider_session_ended(self, sid: str, iss: str | None) -> None:
        """OpenID Connect Front-Channel Logout 1.0: the provider's sign-out page says, through
        the person's browser, that its session ``sid`` ended. ``iss``, when given, must be the
        provider's issuer (Microsoft Entra ID sends none); every console session begun until
        now from that provider session ends. :class:`SsoError` when refused: front-channel
        logout off, no ``sid``, another issuer, or more calls this minute than
        ``frontchannel_logout_per_minute`` (``busy``)."""
        if self._ends is None or not self.settings.frontchannel_logout:
            raise SsoError("unsupported", "front-channel logout is off (admin.sso)")
        if not sid or len(sid) > _SID_MAX or not sid.isprintable():
            raise SsoError("invalid_request", "give the provider's session as sid")
        if iss is not None and iss != self.settings.issuer:
            raise SsoError("invalid_request", "iss is not this gateway's provider")
        if not self._front.take():
            raise SsoError("busy", "too many front-channel logouts this minute")
        await self._ends.end(provider=provider_ref("sid", sid))

    # -- the flow -------------------------------------------------------------------------

    async def start(self) -> tuple[str, str]:
        """(the provider's authorisation URL to send the browser to, the state cookie)."""
        meta = await self.provider.metadata()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = b64(hashlib.sha256(verifier.encode()).digest())
        location = _with_query(
            meta["authorization_endpoint"],
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": " ".join(self.settings.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        exp = int(time.time()) + _STATE_TTL_S
        cookie = self._state.sign(
            {"state": state, "nonce": nonce, "verifier": verifier, "exp": exp}
        )
        return location, cookie

    async def finish(self, query: dict[str, str], cookie: str | None) -> Principal:
        """The principal of a person back from the provider; :class:`SsoError` otherwise."""
        flow = self._state.verify(cookie)
        if flow is None:
            raise SsoError("expired", "no sign-in in progress in this browser (or it expired)")
        if "error" in query:
            raise SsoError("denied", "the provider did not sign the person in")
        if not hmac.compare_digest(str(query.get("state", "")), str(flow.get("state", ""))):
            raise SsoError("invalid_state", "state does not match this browser's sign-in")
        code = query.get("code")
        if not code or len(code) > 4096:
            raise SsoError("invalid_request", "no authorisation code")
        claims = await self._exchange(code, flow)
        return self._principal(claims)

    async def _exchange(self, code: str, flow: dict[str, Any]) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self._exchanges.acquire(), self.settings.timeout_s)
        except TimeoutError:
            raise SsoError("busy", "too many sign-ins in progress") from None
        try:
            return await self._exchange_code(code, flow)
        finally:
            self._exchanges.release()

    async def _exchange_code(self, code: str, flow: dict[str, Any]) -> dict[str, Any]:
        meta = await self.provider.metadata()
        secret = self.settings.client_secret()
        if secret is None:
            raise SsoError("provider_unavailable", "the client secret is not available")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": flow["verifier"],
        }
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        headers = {}
        if "client_secret_basic" in methods:
            pair = f"{_form(self.settings.client_id)}:{_form(secret.get_secret_value())}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.settings.client_id
            form["client_secret"] = secret.get_secret_value()
        try:
            async with self.provider.session().post(
                meta["token_endpoint"], data=form, headers=headers, allow_redirects=False
            ) as resp:
                if resp.status != 200:
                    raise SsoError("invalid_grant", f"token endpoint answered {resp.status}")
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SsoError(
                "provider_unavailable", f"token endpoint ({type(exc).__name__})"
            ) from None
        token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise SsoError("invalid_token", "the token endpoint gave no ID token")
        claims = await self.provider.verified(token, "ID token", ["exp", "iat", "sub"])
        if not hmac.compare_digest(str(claims.get("nonce", "")), str(flow.get("nonce", ""))):
            raise SsoError("invalid_token", "ID token nonce does not match this sign-in")
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.settings.client_id:
            raise SsoError("invalid_token", "ID token issued to another party (azp)")
        return claims

    def _principal(self, claims: dict[str, Any]) -> Principal:
        s = self.settings
        user = claims.get(s.user_claim)
        if not isinstance(user, str) or not user:
            raise SsoError("not_permitted", f"the ID token has no '{s.user_claim}' claim")
        groups = claims.get(s.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        groups = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
        roles = sorted({r for g in groups for r in s.roles.get(g, ())})
        tags = sorted({t for g in groups for t in s.tags.get(g, ())})
        if not roles:
            raise SsoError("not_permitted", "the person is in no group given a console role")
        jurisdiction = s.jurisdiction
        claimed = claims.get(s.jurisdiction_claim) if s.jurisdiction_claim else None
        if isinstance(claimed, str):
            try:
                country, sub = parse_jurisdiction(claimed)
                jurisdiction = sub or country
            except ValueError:
                pass  # the configured jurisdiction stands
        team = claims.get(s.team_claim) if s.team_claim else None
        team = team if isinstance(team, str) and team else None
        tenant = claims.get(s.tenant_claim) if s.tenant_claim else None
        tenant = tenant if isinstance(tenant, str) and tenant else s.tenant
        try:
            validate_principal_fields(
                user, jurisdiction, s.sector, team, tuple(roles), tuple(tags), tenant
            )
        except ValueError:
            raise SsoError(
                "not_permitted", "the person's name, team or tenant is not an identifier"
            ) from None
        # what a back-channel logout may name: the provider's subject, and its session if given
        provider = [
            provider_ref(kind, claims[kind])
            for kind in ("sub", "sid")
            if isinstance(claims.get(kind), str) and claims[kind]
        ]
        return Principal(
            key_id=f"sso:{user}",
            user=user,
            jurisdiction=jurisdiction,
            sector=s.sector,
            team=team,
            roles=tuple(roles),
            tags=tuple(tags),
            tenant=tenant,
            extra={"provider": tuple(provider)},
        )

    def issue(self, principal: Principal, sid: str) -> tuple[str, int]:
        """A session token for the principal, and when it expires (Unix seconds)."""
        payload = session_payload(principal, sid, self.settings.session_ttl_s)
        return self.sessions.sign(payload), int(payload["exp"])


def _form(value: str) -> str:
    """RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic encoding."""
    from urllib.parse import quote

    return quote(value, safe="")


def _with_query(endpoint: str, params: dict[str, str]) -> str:
    """A provider's endpoint with our parameters added to any query it already has."""
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
