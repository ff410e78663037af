"""What the gateway reads from an OpenID Connect provider (``admin.sso``) and how it trusts what
the provider signs: the discovery document (its issuer matching the configured one exactly,
its endpoints https or local), the key set (cached, refetched at most once a minute for an
unknown key id), and a token checked against them — a key of the JWKS, an asymmetric algorithm
only, issuer, audience, the claims required. The sign-in flow and the sessions are
:mod:`gateway.sso`; ``portcullis check`` reads the provider through this too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt

from gateway.config.admin import SsoSettings, local_http

__all__ = ["LEEWAY_S", "OidcProvider", "SsoError", "endpoint_ok"]

_CACHE_S = 3600.0  # how long the provider's metadata and keys are trusted before a refetch
_JWKS_RETRY_S = 60.0  # an unknown key id refetches the key set at most this often
# Asymmetric algorithms only: never "none", never a shared-secret HMAC an attacker could try.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
LEEWAY_S = 60  # the clock skew allowed on a token's times


class SsoError(Exception):
    """A sign-in that did not succeed. ``code`` goes to the page (``#sso_error=<code>``);
    ``message`` is safe to log (never a token, a code or a claim's value)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OidcProvider:
    """One configured provider, as the gateway reads it."""

    def __init__(self, settings: SsoSettings) -> None:
        self.settings = settings
        self._http: aiohttp.ClientSession | None = None
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_at = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every call to the provider goes through (``timeout_s`` each)."""
        if self._http is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
            self._http = aiohttp.ClientSession(timeout=timeout)
        return self._http

    async def _get_json(self, url: str) -> Any:
        try:
            async with self.session().get(url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise SsoError("provider_unavailable", f"provider answered {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SsoError("provider_unavailable", f"provider ({type(exc).__name__})") from None

    @property
    def discovery_url(self) -> str:
        # OpenID Connect Discovery 1.0, section 4: a final "/" of the issuer removed
        return self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._meta is None or time.monotonic() - self._meta_at > _CACHE_S:
                meta = await self._get_json(self.discovery_url)
                if not isinstance(meta, dict) or meta.get("issuer") != self.settings.issuer:
                    named = meta.get("issuer") if isinstance(meta, dict) else None
                    shown = repr(named[:200]) if isinstance(named, str) else "none"
                    raise SsoError(
                        "provider_unavailable",
                        f"provider metadata names another issuer ({shown}; configured: "
                        f"{self.settings.issuer!r}, which must match it exactly)",
                    )
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not endpoint_ok(meta.get(name), self.settings.issuer):
                        raise SsoError("provider_unavailable", f"provider metadata: bad {name}")
                self._meta, self._meta_at = meta, time.monotonic()
            return self._meta

    async def key_set(self) -> jwt.PyJWKSet:
        """The provider's key set (``jwks_uri``), fetched now; :class:`SsoError` when it does not
        answer or holds no usable key."""
        doc = await self._get_json((await self.metadata())["jwks_uri"])
        try:
            return jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError:
            raise SsoError("provider_unavailable", "provider key set unreadable") from None

    async def _signing_key(self, token: str, what: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise SsoError("invalid_token", f"{what} is not a JWT") from None
        for attempt in (0, 1):
            stale = time.monotonic() - self._jwks_at
            if self._jwks is None or stale > _CACHE_S or (attempt and stale > _JWKS_RETRY_S):
                self._jwks, self._jwks_at = await self.key_set(), time.monotonic()
            for key in self._jwks.keys:
                if kid is None or key.key_id == kid:
                    return key.key
        raise SsoError("invalid_token", f"{what} signed by a key the provider does not publish")

    async def verified(self, token: str, what: str, require: list[str]) -> dict[str, Any]:
        """A token the provider signed for us: the claims of ``token`` once its signature (a
        key of the provider's JWKS, an asymmetric algorithm), issuer and audience are checked
        and the ``require``d claims are there (``exp``, when present, not past)."""
        key = await self._signing_key(token, what)
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=_ALGORITHMS,
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", *require]},
            )
        except jwt.PyJWTError as exc:
            raise SsoError("invalid_token", f"{what} refused ({type(exc).__name__})") from None


def endpoint_ok(url: Any, issuer: str) -> bool:
    """An endpoint the metadata names: https, or http on this machine as the issuer may be."""
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return local_http(url) and local_http(issuer)
