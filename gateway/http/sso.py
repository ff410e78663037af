"""The console's single sign-on routes (``admin.sso``; the flow is :mod:`gateway.sso`).

- ``GET /console/sso/status`` — whether the console offers "Sign in with single sign-on".
- ``GET /console/sso/login`` — to the provider (302), with the flow's signed state cookie.
- ``GET /console/sso/callback`` — back from the provider: the sign-in is checked, recorded in the
  audit trail (kind ``access``, ``op: console_sign_in``) and the browser sent to
  ``/console/#sso=<session>``; a refused or failed one to ``/console/#sso_error=<code>``, also
  on the record when someone the provider vouched for is refused. Neither answer carries the
  code, the ID token or a claim's value in a log line.
- From outside ``admin.networks`` (when set) neither sign-in route goes on: the browser is sent
  back with ``sso_error=address_not_allowed`` and the provider is not called.
- ``POST /console/sso/backchannel-logout`` — the provider says a person's session there ended
  (OpenID Connect Back-Channel Logout 1.0; a form with ``logout_token``): every console session
  from it ends; 200, or 400 with an OAuth-shaped ``error`` the provider understands. Recorded
  (``op: console_provider_sign_out``). Not bound to ``admin.networks``: the provider calls from
  its own servers, and the token's signature is the credential.
- ``GET /console/sso/frontchannel-logout?sid=…[&iss=…]`` — with ``admin.sso.frontchannel_logout``
  on, the provider's sign-out page (in a frame of the person's browser) says its session ``sid``
  ended (OpenID Connect Front-Channel Logout 1.0; Microsoft Entra ID sends no ``iss``): every
  console session from it ends; an empty page (200), 400 for another issuer or no ``sid``, 403
  from outside ``admin.networks``, 429 past ``frontchannel_logout_per_minute``, 404 when off.
  Recorded (``op: console_provider_sign_out``, ``channel: front``).
- ``POST /admin/console/sign-out`` — a session ends itself (the console's Sign out); with
  ``admin.sso.sign_out_at_provider``, the answer's ``provider`` is the provider's sign-out URL,
  where the console sends the browser next.
- ``POST /admin/console/sessions/end`` ``{"user": …, "revoke_keys"?: true}`` (role ``admin``) —
  every session of that person begun until now ends, on every replica at their next call; with
  ``revoke_keys``, every active key in their name is revoked too.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect

from gateway.errors import Cause, GatewayError
from gateway.http.admin_call import json_body, no_body
from gateway.http.admin_guard import from_admin_networks
from gateway.key_records import NAME_RULE
from gateway.principal import Principal, actor_of
from gateway.services import Services
from gateway.sso import STATE_COOKIE, OidcClient, SsoError

__all__ = ["SSO_ADMIN_HANDLERS", "SSO_HANDLERS"]

log = logging.getLogger("portcullis.sso")

_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}
_PATH = "/console/sso"


def _client(state: State) -> OidcClient:
    services: Services = state.services
    if services.sso is None:
        raise GatewayError(Cause.NOT_FOUND, "Single sign-on is not configured (admin.sso).")
    return services.sso


def _cookie(client: OidcClient, value: str, max_age: int) -> Cookie:
    # SameSite=Lax: the provider's redirect back is a top-level navigation from another site,
    # which Strict would strip the cookie from; Lax still keeps it off cross-site sub-requests.
    return Cookie(
        key=STATE_COOKIE,
        value=value,
        path=_PATH,
        max_age=max_age,
        httponly=True,
        secure=client.secure_cookie,
        samesite="lax",
    )


@get("/console/sso/status", include_in_schema=False)
async def sso_status(state: State) -> dict[str, Any]:
    services: Services = state.services
    return {"enabled": services.sso is not None}


@get("/console/sso/login", include_in_schema=False)
async def sso_login(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    client = _client(state)
    if refused := _off_the_admin_networks(request, state):
        return refused
    try:
        location, flow = await client.start()
    except SsoError as exc:
        log.warning("console sign-in could not start: %s (%s)", exc.code, exc.message)
        return _back({"sso_error": exc.code})
    return Redirect(
        location, status_code=302, headers=_NO_STORE, cookies=[_cookie(client, flow, 600)]
    )


@get("/console/sso/callback", include_in_schema=False)
async def sso_callback(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    services: Services = state.services
    client = _client(state)
    if refused := _off_the_admin_networks(request, state):
        return refused
    query = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    cleared = _cookie(client, "", 0)
    try:
        principal = await client.finish(query, request.cookies.get(STATE_COOKIE))
    except SsoError as exc:
        log.warning("console sign-in refused: %s (%s)", exc.code, exc.message)
        if exc.code == "not_permitted":  # the provider vouched for someone we refuse
            await _record(services, {"op": "console_sign_in_refused", "reason": exc.code})
        return _back({"sso_error": exc.code}, cleared)
    sid = secrets.token_hex(6)
    token, expires = client.issue(principal, sid)
    event = {
        "actor": actor_of(principal),
        "principal": principal.policy_view(),
        "action": {"op": "console_sign_in", "session": sid, "expires": expires},
    }
    try:  # granting access is recorded first, as a key's creation is
        await services.audit.record("access", event)
    except Exception as exc:  # noqa: BLE001 - any store failure: no session without its record
        log.error(
            "console sign-in not given: the audit trail did not record it (%s)", type(exc).__name__
        )
        return _back({"sso_error": "audit_unavailable"}, cleared)
    log.info("console sign-in: session %s, roles %s", sid, ",".join(principal.roles))
    return _back({"sso": token}, cleared)


_LOGOUT_CAP = 16 * 1024  # a logout token is a few hundred bytes; the form is read up to this


@post("/console/sso/backchannel-logout", include_in_schema=False, status_code=200)
async def backchannel_logout(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    from urllib.parse import parse_qs

    from gateway.http.body import read_body

    services: Services = state.services
    client = _client(state)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return _oauth_error(415, "invalid_request", "send a form (x-www-form-urlencoded)")
    length = request.headers.get("content-length")
    raw = await read_body(request.receive, length.encode() if length else None, _LOGOUT_CAP)
    try:
        form = parse_qs(raw.decode("ascii"), strict_parsing=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        form = {}
    tokens = form.get("logout_token", [])
    if len(tokens) != 1:
        return _oauth_error(400, "invalid_request", "give one logout_token")
    try:
        by = await client.provider_sign_out(tokens[0])
    except SsoError as exc:
        log.warning("back-channel logout refused: %s (%s)", exc.code, exc.message)
        return _oauth_error(400, "invalid_request", exc.message)
    await _record(
        services, {"op": "console_provider_sign_out", "by": by, "channel": "back"}, "sso-provider"
    )
    log.info("back-channel logout: the console sessions of a provider %s ended", by)
    return Response(b"", status_code=200, headers={"cache-control": "no-store"})


@get("/console/sso/frontchannel-logout", include_in_schema=False)
async def frontchannel_logout(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    services: Services = state.services
    client = _client(state)
    if not client.settings.frontchannel_logout:
        return _oauth_error(404, "invalid_request", "front-channel logout is off (admin.sso)")
    if not from_admin_networks(services, request.scope):
        log.warning("front-channel logout refused: address_not_allowed (admin.networks)")
        return _oauth_error(403, "access_denied", "not from admin.networks")
    sids, issuers = request.query_params.getall("sid", []), request.query_params.getall("iss", [])
    if len(sids) != 1 or len(issuers) > 1:
        return _oauth_error(400, "invalid_request", "give one sid (and at most one iss)")
    try:
        await client.provider_session_ended(sids[0], issuers[0] if issuers else None)
    except SsoError as exc:
        log.warning("front-channel logout refused: %s (%s)", exc.code, exc.message)
        if exc.code == "busy":
            return _oauth_error(429, "temporarily_unavailable", exc.message, {"retry-after": "1"})
        return _oauth_error(400, "invalid_request", exc.message)
    await _record(
        services, {"op": "console_provider_sign_out", "by": "sid", "channel": "front"},
        "sso-provider",
    )  # fmt: skip
    log.info("front-channel logout: the console sessions of a provider sid ended")
    # Front-Channel Logout 1.0, section 3: not cached; shown (empty) in the provider's frame
    return Response(
        b"<!doctype html><title>Signed out</title>",
        status_code=200,
        media_type="text/html",
        headers={
            "cache-control": "no-cache, no-store",
            "pragma": "no-cache",
            "referrer-policy": "no-referrer",
            "content-security-policy": (
                f"default-src 'none'; frame-ancestors {_origin(client.settings.issuer)}"
            ),
        },
    )


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    """Back-Channel Logout 1.0, section 2.8: a refusal the provider understands (OAuth 2.0's
    ``error`` and ``error_description``), never a token or a claim's value."""
    return Response(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"cache-control": "no-store", **(headers or {})},
    )


def _off_the_admin_networks(request: Request[Any, Any, Any], state: State) -> Response[Any] | None:
    """From outside ``admin.networks`` no sign-in starts or ends in a session: the session
    could not be used from there, and the provider is not troubled."""
    if from_admin_networks(state.services, request.scope):
        return None
    log.warning("console sign-in refused: address_not_allowed (admin.networks)")
    return _back({"sso_error": "address_not_allowed"})


def _back(fragment: dict[str, str], *cookies: Cookie) -> Response[Any]:
    """To the console, the outcome in the URL's fragment (never sent to a server, never in a
    Referer): the page reads it and removes it from the address bar."""
    ((name, value),) = fragment.items()
    return Redirect(
        f"/console/#{name}={value}", status_code=303, headers=_NO_STORE, cookies=list(cookies)
    )


async def _record(services: Services, action: dict[str, Any], actor: str = "sso") -> None:
    """An entry for something that takes access away or grants none (a refused sign-in, a
    sign-out, sessions ended): it stands without its record, whose failure is logged."""
    try:
        await services.audit.record("access", {"actor": actor, "action": action})
    except Exception as exc:  # noqa: BLE001 - what it records stands without it
        log.error("console %s not recorded (%s)", action["op"], type(exc).__name__)


def _session_of(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal | None = request.scope["state"].get("admin_principal")
    if principal is None or not principal.via_sso:
        raise GatewayError(
            Cause.CONFLICT, "Not a console session: only a session from single sign-on signs out."
        )
    return principal


@post("/admin/console/sign-out", opt={"role": ("admin", "auditor")}, status_code=200)
async def sign_out(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    client = _client(state)
    principal = _session_of(request)
    sid = str(principal.extra["session"])
    await no_body(request)
    await client.end(sid=sid)  # taking access away always happens; its record may fail
    await _record(services, {"op": "console_sign_out", "session": sid}, actor_of(principal))
    at_provider = await client.sign_out_url()
    return {"ended": True} if at_provider is None else {"ended": True, "provider": at_provider}


@post("/admin/console/sessions/end", opt={"role": "admin"}, status_code=200)
async def end_sessions(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    client = _client(state)
    body = await json_body(request, 4)
    user, revoke_keys = body.get("user"), body.get("revoke_keys", False)
    if (
        not isinstance(user, str)
        or not 1 <= len(user) <= 200
        or set(body) - {"user", "revoke_keys"}
        or not isinstance(revoke_keys, bool)
    ):
        raise GatewayError(
            Cause.INVALID_PARAMETER,
            f"Give {{'user': <{NAME_RULE}>, 'revoke_keys'?: true}}, the person.",
            param="user",
        )
    actor = actor_of(request.scope["state"].get("admin_principal"))
    ended = await client.end(user=user)
    await _record(services, {"op": "console_sessions_ended", "user": user}, actor)
    out: dict[str, Any] = {"user": user, "ended_at": ended.isoformat()}
    if revoke_keys:  # someone leaving: the keys in their name go too
        try:
            out["revoked"] = await services.keys.revoke_user(user, actor)
        except ValueError:  # a name no key can have: there is none to revoke
            out["revoked"] = []
    return out


SSO_HANDLERS = [sso_status, sso_login, sso_callback, backchannel_logout, frontchannel_logout]
SSO_ADMIN_HANDLERS = [sign_out, end_sessions]
