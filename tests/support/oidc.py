"""A fake OpenID Connect provider: a real HTTP server on 127.0.0.1 for the console's sign-in.

It serves discovery, an authorisation endpoint that signs in whoever is set in ``claims`` at
once (302 back to the redirect URI with a code), a token endpoint that checks the client's
secret (HTTP Basic), the code and its PKCE verifier and answers an RS256 ID token, and the
key set. ``fault`` makes the next ID token wrong in one way: ``audience``, ``issuer``,
``expired``, ``nonce``, ``signature`` (signed by a key it does not publish), ``none`` (the
``alg: none`` trick) or ``hs256`` (signed with the client secret as an HMAC key).
:meth:`FakeIdP.logout_token` makes the logout token a provider posts to the gateway's
back-channel logout endpoint (:meth:`FakeIdP.back_channel_logout` posts it, as a provider does).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["FakeIdP"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeIdP:
    def __init__(
        self,
        client_id: str = "portcullis-console",
        client_secret: str = "idp-secret-0123456789abcdef0123456789",
    ):
        self.client_id, self.client_secret = client_id, client_secret
        self.port = _free_port()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.claims: dict[str, Any] = {"email": "liz@example.org", "groups": ["compliance"]}
        self.fault: str | None = None
        self.codes: dict[str, dict[str, Any]] = {}  # code -> the authorisation it stands for
        self.token_calls: list[dict[str, Any]] = []  # what the token endpoint was sent
        self.token_delay_s = 0.0  # how long the token endpoint takes to answer
        self.in_flight = self.most_in_flight = 0  # token requests being answered at once
        self.discoveries = 0  # how often the discovery document was fetched
        self.trailing_slash = False  # an issuer spelled with a final "/", as Auth0's is
        self.sign_outs: list[dict[str, str]] = []  # what the end-session endpoint was sent
        self.end_session = True  # whether the discovery document names an end-session endpoint
        self.back_channel = True  # whether it says it offers back-channel logout
        self.front_channel = True  # whether it says it offers front-channel logout
        # Front-channel logout: the RP's registered URI, which the end-session page loads in a
        # frame with the person's provider session (claims["sid"]); iss too unless this is
        # False (Microsoft Entra ID sends none)
        self.front_channel_uri: str | None = None
        self.front_channel_iss = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def issuer(self) -> str:
        return self.base + ("/" if self.trailing_slash else "")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeIdP:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_get("/.well-known/openid-configuration", self._discovery)
            app.router.add_get("/authorize", self._authorize)
            app.router.add_post("/token", self._token)
            app.router.add_get("/jwks", self._jwks)
            app.router.add_get("/logout", self._logout)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def _discovery(self, _: web.Request) -> web.Response:
        self.discoveries += 1
        ends = {"end_session_endpoint": f"{self.base}/logout"} if self.end_session else {}
        return web.json_response(
            {
                **ends,
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "jwks_uri": f"{self.base}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "backchannel_logout_supported": self.back_channel,
                "backchannel_logout_session_supported": self.back_channel,
                "frontchannel_logout_supported": self.front_channel,
                "frontchannel_logout_session_supported": self.front_channel,
            }
        )

    def logout_token(self, fault: str | None = None, **claims: Any) -> str:
        """A Back-Channel Logout 1.0 token naming ``claims`` (``sub`` and/or ``sid``), signed
        as the ID tokens are. ``fault``: ``signature`` (a key not published), ``audience``,
        ``event`` (without the logout event), ``nonce`` (an ID token's claim), ``old`` (issued
        an hour ago), ``nobody`` (neither ``sub`` nor ``sid``)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_hex(8),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            **claims,
        }
        if fault == "audience":
            body["aud"] = "someone-else"
        elif fault == "event":
            body["events"] = {"http://schemas.openid.net/event/other": {}}
        elif fault == "nonce":
            body["nonce"] = "n"
        elif fault == "old":
            body["iat"], body["exp"] = now - 3600, now + 120
        elif fault == "nobody":
            body.pop("sub", None)
            body.pop("sid", None)
        key = self.other_key if fault == "signature" else self.key
        return jwt.encode(
            body, key, algorithm="RS256", headers={"kid": self.kid, "typ": "logout+jwt"}
        )

    @staticmethod
    def back_channel_logout(url: str, token: str) -> tuple[int, Any]:
        """Post ``token`` to the gateway's back-channel logout endpoint as a provider does:
        (status, the JSON answer or None)."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            url + "/console/sso/backchannel-logout",
            data=urlencode({"logout_token": token}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                body = resp.read()
                return resp.status, json.loads(body) if body else None
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    async def _logout(self, request: web.Request) -> web.Response:
        """RP-Initiated Logout: the provider's session ends, the browser goes back. With a
        front-channel logout URI registered, the page first loads it in a hidden frame (as a
        provider's sign-out page does for each client the person used) and goes on once the
        frame has loaded."""
        query = dict(request.query)
        self.sign_outs.append(query)
        back = query.get("post_logout_redirect_uri")
        if self.front_channel_uri is not None:
            import html

            params = {"sid": str(self.claims.get("sid", ""))}
            if self.front_channel_iss:
                params = {"iss": self.issuer, **params}
            frame = html.escape(f"{self.front_channel_uri}?{urlencode(params)}")
            go = f"location.href={json.dumps(back)}" if back else "document.title='signed out'"
            page = (
                f"<!doctype html><title>signing out</title>"
                f'<iframe style="display:none" src="{frame}" onload="{html.escape(go)}"></iframe>'
            )
            return web.Response(text=page, content_type="text/html")
        if back is None:
            return web.Response(text="signed out")
        raise web.HTTPFound(back)

    async def _jwks(self, _: web.Request) -> web.Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return web.Response(status=400, text="bad request")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE required")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": q.get("nonce"),
            "challenge": q["code_challenge"],
            "redirect_uri": q.get("redirect_uri"),
            "claims": dict(self.claims),
        }
        back = urlencode({"code": code, "state": q.get("state", "")})
        raise web.HTTPFound(f"{q.get('redirect_uri')}?{back}")

    async def _token(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            return await self._answer_token(request)
        finally:
            self.in_flight -= 1

    async def _answer_token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_calls.append({"form": form, "auth": request.headers.get("Authorization")})
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {basic}":
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != grant["challenge"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(
            {"access_token": "at", "token_type": "Bearer", "id_token": self._id_token(grant)}
        )

    def _id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            **grant["claims"],
        }
        fault = self.fault
        if fault == "audience":
            claims["aud"] = "someone-else"
        elif fault == "issuer":
            claims["iss"] = "https://evil.example"
        elif fault == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif fault == "nonce":
            claims["nonce"] = "not-the-one"
        headers = {"kid": self.kid}
        if fault == "none":
            return jwt.encode(claims, key=None, algorithm="none", headers=headers)
        if fault == "hs256":
            return jwt.encode(claims, self.client_secret, algorithm="HS256", headers=headers)
        key = self.other_key if fault == "signature" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)
