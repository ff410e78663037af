"""The admin API. Deny by default: every route must name the role it requires in ``opt``.

Callers authenticate with the admin token (``Authorization: Bearer <token>``, role ``admin``,
which may do everything) or with an API key whose principal holds the route's role (for
example ``auditor``). A route under ``/admin`` without ``opt={"role": ...}`` refuses everyone.
A valid key refused for want of the role is recorded in the audit trail (kind ``access``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

from litestar import Request, Response, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from audit.store import parse_utc
from gateway.budgets import report
from gateway.errors import Cause, GatewayError
from gateway.http.body import client_address
from gateway.key_records import (
    NAME_RULE,
    validate_budget,
    validate_expiry,
    validate_limits,
    validate_models,
    validate_networks,
)
from gateway.keys import KeyNotRecorded
from gateway.principal import Principal, actor_of, address_in
from gateway.reload import Reloader
from gateway.services import Services
from gateway.sso import SESSION_PREFIX

__all__ = ["ADMIN_HANDLERS", "admin_guard"]

T = TypeVar("T")
log = logging.getLogger("portcullis")


_SESSION_ONLY = "This action needs a console session from single sign-on."


async def admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    role = handler.opt.get("role")  # a role, or a tuple of roles any of which will do
    roles = (role,) if isinstance(role, str) else role
    if not (isinstance(roles, tuple) and roles and all(isinstance(r, str) and r for r in roles)):
        raise GatewayError(Cause.FORBIDDEN, "This admin route declares no role; it is closed.")
    services: Services = connection.app.state.services
    address = client_address(connection.scope)
    allowed = services.settings.admin.parsed_networks
    if allowed is not None and not address_in(address, allowed):
        # before any credential is looked at: from elsewhere the admin API is closed
        raise GatewayError(
            Cause.ADDRESS_NOT_ALLOWED,
            "The admin API may not be used from this network address (admin.networks).",
        )
    auth = connection.headers.get("authorization") or ""
    token = services.admin_token
    presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    session_only = bool(handler.opt.get("session_only"))
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        if session_only:  # the shared admin token is nobody's own
            raise GatewayError(Cause.FORBIDDEN, _SESSION_ONLY)
        connection.scope["state"]["admin_role"] = "admin"
        return
    if presented.startswith(SESSION_PREFIX) and services.sso is not None:
        # a console session from single sign-on (gateway.sso): admin routes only, never /v1
        session = await services.sso.verify_session(presented)
        if session is None:
            raise GatewayError(
                Cause.UNAUTHENTICATED, "The console session is not valid or has expired."
            )
        principal = session
    else:
        principal = await services.keys.authenticate(auth, address)
    method = str(connection.scope.get("method", ""))
    if not set(roles) & set(principal.roles):
        needs = " or ".join(f"'{r}'" for r in roles)
        await _record_refusal(services, principal, handler, method, "+".join(roles))
        raise GatewayError(Cause.FORBIDDEN, f"This action needs the {needs} role.")
    if session_only and not principal.via_sso:
        # keys people make for themselves: a key's holder must not mint more keys
        await _record_refusal(services, principal, handler, method, "sso-session")
        raise GatewayError(Cause.FORBIDDEN, _SESSION_ONLY)
    connection.scope["state"]["admin_principal"] = principal


async def _record_refusal(
    services: Services, principal: Principal, handler: BaseRouteHandler, method: str, role: str
) -> None:
    """A valid key tried an admin action its roles do not allow (a staff key minting keys, an
    auditor changing limits): refused, and on the record (kind ``access``) with who, which
    action and the role it needed. Nothing was granted, so a failure to record is logged, not
    fatal."""
    action = {"op": "refused", "handler": handler.handler_name, "method": method, "needs": role}
    event = {"actor": actor_of(principal), "principal": principal.policy_view()}
    event["action"] = action
    try:
        await services.audit.record("access", event)
    except Exception as exc:  # noqa: BLE001 - any store failure: the refusal stands
        log.error("admin call refused, but not recorded (%s)", type(exc).__name__)


@get("/admin/keys", opt={"role": "admin"})
async def list_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """``?include_revoked=true``, ``&user=``, ``&team=``, ``&jurisdiction=`` (``AU`` includes
    ``AU-NSW``)."""
    services: Services = state.services
    q = request.query_params
    unknown = set(q) - {"include_revoked", "user", "team", "jurisdiction"}
    if unknown:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported filter: '{sorted(unknown)[0]}'.")
    include_revoked = q.get("include_revoked", "false").lower() == "true"
    try:
        records = await services.keys.list(
            include_revoked,
            user=q.get("user"),
            team=q.get("team"),
            jurisdiction=q.get("jurisdiction"),
        )
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid filter: {exc}") from None
    return {"object": "list", "data": [r.to_json() for r in records]}


@get("/admin/keys/{key_id:str}", opt={"role": "admin"})
async def get_key(key_id: FromPath[str], state: State) -> dict[str, Any]:
    """One key's record (revoked and expired ones too), never the key itself."""
    services: Services = state.services
    record = await services.keys.get(key_id)
    if record is None:
        raise GatewayError(Cause.NOT_FOUND, "No key with that id.")
    return record.to_json()


@post("/admin/keys", opt={"role": "admin"}, status_code=201)
async def create_key(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    services: Services = state.services
    body = await _json_body(request, 8)
    allowed = {
        "budget_usd",
        "user",
        "jurisdiction",
        "sector",
        "team",
        "roles",
        "tags",
        "tenant",
        "description",
        "expires_at",
        "models",
        "networks",
        *_LIMITS,
    }
    extra = set(body) - allowed
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    try:
        roles = _names(body.get("roles"), "roles")
        tags = _names(body.get("tags"), "tags")
        issued = await _recorded(
            services.keys.create(  # checks every field first: ValueError names the one
                user=body.get("user") or "",
                jurisdiction=body.get("jurisdiction") or "",
                sector=body.get("sector") or "",
                team=body.get("team"),
                roles=roles,
                tags=tags,
                tenant=body.get("tenant", "default"),
                description=body.get("description"),
                requests_per_minute=body.get("requests_per_minute"),
                tokens_per_minute=body.get("tokens_per_minute"),
                actor=_actor(request),
                expires_at=_time(body.get("expires_at")),
                models=body.get("models"),
                budget_microusd=validate_budget(body.get("budget_usd")),
                networks=body.get("networks"),
            )
        )
    except (ValueError, TypeError) as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid key request: {exc}") from None
    record = await services.keys.get(issued.key_id)
    assert record is not None
    return Response({"key": issued.key, **record.to_json()}, status_code=201)


@delete("/admin/keys/{key_id:str}", opt={"role": "admin"}, status_code=200)
async def revoke_key(
    key_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    services: Services = state.services
    if not await services.keys.revoke(key_id, _actor(request)):
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    return {"key_id": key_id, "revoked": True}


@post("/admin/keys/revoke", opt={"role": "admin"}, status_code=200)
async def revoke_users_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Revoke every active key in a person's name: ``{"user": NAME, "tenant"?: NAME}`` (someone
    leaving; each revocation recorded). Answers the ids revoked (none is not an error)."""
    services: Services = state.services
    body = await _json_body(request, 2)
    user, tenant = body.get("user"), body.get("tenant")
    if set(body) - {"user", "tenant"} or not isinstance(user, str) or not user:
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"Give {{'user': <{NAME_RULE}>}}, the person.", param="user"
        )
    if tenant is not None and not isinstance(tenant, str):
        raise GatewayError(Cause.INVALID_PARAMETER, "tenant: a name", param="tenant")
    try:
        revoked = await services.keys.revoke_user(user, _actor(request), tenant)
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid request: {exc}") from None
    return {"user": user, "revoked": revoked}


_LIMITS = ("requests_per_minute", "tokens_per_minute")


def _names(value: object, field: str) -> tuple[str, ...]:
    """``roles`` / ``tags`` of a new key: a list of strings (each checked by the key service);
    a bare string is refused, not read as a list of its characters."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field}: a list of names")
    return tuple(value)


def _time(value: object) -> datetime | None:
    """``expires_at`` of a key: an ISO 8601 time (no offset: UTC) or null."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_utc(value)
    except ValueError:
        raise ValueError("expires_at: an ISO 8601 time, e.g. 2027-03-31T00:00:00Z") from None


@patch("/admin/keys/{key_id:str}", opt={"role": "admin"}, status_code=200)
async def update_key(
    key_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """A key's own limits, expiry, models, budget and networks: ``{"requests_per_minute": N |
    null, "tokens_per_minute": N | null, "expires_at": TIME | null, "models": [NAME, ...] | null,
    "budget_usd": USD | null, "networks": [CIDR, ...] | null}`` (limits and budget: null is the
    configured default, 0 none; expiry: null is never; models: null is every model; networks:
    null is anywhere; a field left out keeps its value)."""
    services: Services = state.services
    body = await _json_body(request, 4)
    extra = set(body) - {*_LIMITS, "expires_at", "models", "budget_usd", "networks"}
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    record = await services.keys.get(key_id)
    if record is None or record.revoked_at is not None or record.expired():
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    actor = _actor(request)
    try:
        # every field checked before any change is made
        expiry = validate_expiry(_time(body["expires_at"])) if "expires_at" in body else None
        rpm = body.get("requests_per_minute", record.requests_per_minute)
        tpm = body.get("tokens_per_minute", record.tokens_per_minute)
        validate_limits(rpm, tpm)
        validate_models(body.get("models"))
        validate_networks(body.get("networks"))
        budget = validate_budget(body.get("budget_usd"))
        changed = True
        if set(_LIMITS) & set(body):
            changed = await _recorded(services.keys.set_limits(key_id, rpm, tpm, actor=actor))
        if changed and "expires_at" in body:
            changed = await _recorded(services.keys.set_expiry(key_id, expiry, actor=actor))
        if changed and "models" in body:
            changed = await _recorded(services.keys.set_models(key_id, body["models"], actor=actor))
        if changed and "budget_usd" in body:
            changed = await _recorded(services.keys.set_budget(key_id, budget, actor=actor))
        if changed and "networks" in body:
            nets = body["networks"]
            changed = await _recorded(services.keys.set_networks(key_id, nets, actor=actor))
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid key change: {exc}") from None
    if not changed:
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    updated = await services.keys.get(key_id)
    assert updated is not None
    return updated.to_json()


@post("/admin/keys/{key_id:str}/rotate", opt={"role": "admin"}, status_code=201)
async def rotate_key(
    key_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> Response[Any]:
    """A successor for an active key (``{"grace_seconds": N}``, default 0: the old key is revoked
    at once; else it expires N seconds from now). The new key is shown once, as at creation."""
    services: Services = state.services
    body = await _json_body(request, 4, empty_ok=True)
    extra = set(body) - {"grace_seconds"}
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    try:
        done = await _recorded(
            services.keys.rotate(
                key_id, grace_s=body.get("grace_seconds", 0), actor=_actor(request)
            )
        )
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid rotation: {exc}") from None
    if done is None:
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    issued, old = done
    record = await services.keys.get(issued.key_id)
    assert record is not None
    body = {"key": issued.key, **record.to_json(), "replaced": old.to_json()}
    return Response(body, status_code=201)


@post("/admin/policy/reload", opt={"role": "admin"}, status_code=200)
async def reload_policy(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    await _no_body(request)
    services: Services = state.services
    reload = getattr(services.policy, "reload", None)
    if reload is None:
        raise GatewayError(Cause.CONFLICT, "This policy engine cannot reload.")
    running = services.policy.revision
    try:
        await reload()
    except Exception as exc:  # noqa: BLE001 - the client logged it; the running bundle stays
        raise GatewayError(
            Cause.UNPROCESSABLE,
            f"The policy bundle did not load ({type(exc).__name__}); revision {running} stays "
            "in force. The gateway log has the details.",
        ) from None
    return {"bundle_revision": services.policy.revision}


@post("/admin/config/reload", opt={"role": "admin"}, status_code=200)
async def reload_config(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Read the configuration file again and apply its ``backends`` (:mod:`gateway.reload`)."""
    await _no_body(request)
    services: Services = state.services
    if services.settings.server.workers > 1:
        raise GatewayError(
            Cause.CONFLICT,
            "This gateway runs several workers and this call would reach only one: send SIGHUP "
            "to the server process instead (it restarts every worker on the new file).",
        )
    reloader: Reloader = state.reloader
    report = await reloader.reload("admin", _actor(request))
    return report.to_json()


@get("/admin/config", opt={"role": "admin"})
async def show_config(state: State) -> dict[str, Any]:
    """The running catalogue: each backend's facts (what policy decides on), its models and
    whether it is usable; never a credential, only where it is read from; and the system prompts
    policy may ask for."""
    services: Services = state.services
    return {
        "config_hash": services.config_hash,
        "bundle_revision": services.policy.revision,
        "backends": [
            {
                **b.facts(),
                "base_url": b.base_url,
                "aliases": dict(b.aliases),
                "endpoints": list(b.endpoints),
                "priority": b.priority,
                "weight": b.weight,
                "credential": b.credential.source() if b.credential.configured else None,
                "usable": b.id not in services.router.unusable,
                "circuit_open": services.router.breaker.is_open(b.id),
            }
            for b in services.catalog.backends
        ],
        # The prompts policy may ask for: the operator's texts, shown so that what requests are
        # sent can be checked; the per-request canary is never shown or kept.
        "system_prompts": [
            {"id": pid, "text": p.text, "canary": p.canary, "on_leak": p.on_leak}
            for pid, p in services.settings.system_prompts.items()
        ],
    }


_BODY_CAP = 64 * 1024  # an admin call's JSON is a few hundred bytes


async def _json_body(
    request: Request[Any, Any, Any], max_depth: int, *, empty_ok: bool = False
) -> dict[str, Any]:
    """An admin call's JSON object, read with a cap (413 past it, Content-Length or not);
    ``empty_ok``: no body at all reads as ``{}`` (every field left at its default)."""
    from gateway.http.body import decode_json, read_body

    length = request.headers.get("content-length")
    raw = await read_body(request.receive, length.encode() if length else None, _BODY_CAP)
    if empty_ok and not raw.strip():
        return {}
    return decode_json(raw, max_depth)


async def _no_body(request: Request[Any, Any, Any]) -> None:
    """A reload rereads what the operator put on disk and takes nothing from the caller: a body
    (a hook, a callback, a setting: reliability B-5) is refused, not ignored."""
    body = await _json_body(request, 4, empty_ok=True)
    if body:
        raise GatewayError(
            Cause.INVALID_PARAMETER,
            f"This call takes no body (it rereads the operator's files); "
            f"unsupported field: '{sorted(body)[0]}'.",
        )


async def _recorded(work: Awaitable[T]) -> T:
    """A key change the audit trail must hold first: 503 when it cannot (nothing changed)."""
    try:
        return await work
    except KeyNotRecorded:
        raise GatewayError(
            Cause.AUDIT_UNAVAILABLE,
            "The audit trail could not record the key change; nothing was changed.",
        ) from None


def _actor(request: Request[Any, Any, Any]) -> str:
    """Who asked, for the audit entry: the admin token, a key (``key:<id>``) or a console
    session from single sign-on (``sso:<user>``)."""
    return actor_of(request.scope["state"].get("admin_principal"))


@get("/admin/budgets", opt={"role": "admin"})
async def list_budgets(state: State) -> dict[str, Any]:
    """The spend budgets in force and what each has spent this period (gateway.budgets.report)."""
    services: Services = state.services
    records = await services.keys.list()
    return await report(records, services.budgets, services.settings.budgets)


ADMIN_HANDLERS = [
    list_keys,
    get_key,
    create_key,
    revoke_key,
    revoke_users_keys,
    update_key,
    rotate_key,
    reload_policy,
    reload_config,
    show_config,
    list_budgets,
]
