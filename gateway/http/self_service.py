"""Keys people make for themselves (``admin.sso.self_service``): a person signed in to the console
through single sign-on lists, makes and revokes API keys of their own, as the provider names
them — their user, jurisdiction, sector, team and tenant from the session, no roles, the tag
``self-service``, an expiry (``expires_in_days``) and the configured budget and models — at most
``max_keys`` active at once. A key's holder cannot make keys this way (a leaked key must not mint
more): these routes take a console session only. Each key made or revoked is a ``key`` entry in
the audit trail under ``sso:<user>``, recorded first as every key change is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from gateway.budget_report import spend_of
from gateway.budget_scopes import budgets_of, period_of
from gateway.config.admin import SelfServiceSettings
from gateway.errors import Cause, GatewayError
from gateway.http.admin_call import json_body, recorded
from gateway.key_records import KeyRecord, validate_budget, validate_description
from gateway.key_usage import key_usage
from gateway.principal import Principal, actor_of
from gateway.services import Services

__all__ = ["SELF_SERVICE_HANDLERS", "SELF_SERVICE_TAG"]

SELF_SERVICE_TAG = "self-service"
# Who may use these routes: anyone signed in through single sign-on (a staff member, an
# auditor, an administrator); the guard takes a console session only (opt "session_only").
_ANYONE = ("staff", "auditor", "admin")
_OPT = {"role": _ANYONE, "session_only": True}


def _settings(services: Services) -> SelfServiceSettings:
    sso = services.settings.admin.sso
    if sso is None or sso.self_service is None:
        raise GatewayError(Cause.NOT_FOUND, "Self-service keys are not enabled on this gateway.")
    return sso.self_service


def _me(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal | None = request.scope["state"].get("admin_principal")
    assert principal is not None and principal.via_sso  # the guard's "session_only"
    return principal


def _mine(record: KeyRecord, me: Principal) -> bool:
    return record.user == me.user and record.tenant == me.tenant and SELF_SERVICE_TAG in record.tags


async def _my_keys(services: Services, me: Principal) -> list[KeyRecord]:
    """The person's self-service keys that still work (not revoked, not expired)."""
    return [r for r in await services.keys.list(user=me.user) if _mine(r, me) and r.active()]


@get("/admin/me/keys", opt=_OPT)
async def list_my_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """The signed-in person's working self-service keys, with each one's budget and spend, and
    their own budget across all their keys (``person_budget``; null without one)."""
    services: Services = state.services
    conf = _settings(services)
    me = _me(request)
    records = await _my_keys(services, me)
    budgets = services.settings.budgets
    now = datetime.now(UTC)
    period, _ = period_of(budgets.period, now)
    # each key's own budget, and the person's across all their keys, each in its own period
    own = {
        r.key_id: [b for b in budgets_of(r.principal(), budgets) if b.kind == "key"]
        for r in records
    }
    person = [b for b in budgets_of(me, budgets) if b.kind == "user"]
    spend = await spend_of(
        [*person, *(b for bs in own.values() for b in bs)], services.budgets, now
    )
    data = []
    for r in records:
        row = r.to_json()
        row["budget"] = spend[own[r.key_id][0].scope] if own[r.key_id] else None
        data.append(row)
    mine = spend[person[0].scope] if person else None
    return {
        "object": "list",
        "data": data,
        "max_keys": conf.max_keys,
        "period": period,
        "person_budget": mine,
    }


@post("/admin/me/keys", opt=_OPT, status_code=201)
async def create_my_key(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    """A key for the signed-in person: ``{"description": TEXT}`` or no body. Answers the key
    once; 409 when they already hold ``max_keys`` working ones."""
    services: Services = state.services
    conf = _settings(services)
    me = _me(request)
    body = await json_body(request, 2, empty_ok=True)
    extra = set(body) - {"description"}
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    description = body.get("description")
    try:
        validate_description(description)
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid key request: {exc}") from None
    held = await _my_keys(services, me)
    if len(held) >= conf.max_keys:
        raise GatewayError(
            Cause.CONFLICT,
            f"You already hold {len(held)} working keys, the most this gateway gives one person; "
            "revoke one first.",
        )
    issued = await recorded(
        services.keys.create(
            user=me.user,
            jurisdiction=me.jurisdiction,
            sector=me.sector,
            team=me.team,
            tenant=me.tenant,
            roles=(),
            tags=(SELF_SERVICE_TAG,),
            description=description,
            actor=actor_of(me),
            expires_at=datetime.now(UTC) + timedelta(days=conf.expires_in_days),
            models=conf.models,
            budget_microusd=validate_budget(conf.budget_usd),
            budget_period=conf.budget_period,
            networks=conf.networks,
        )
    )
    record = await services.keys.get(issued.key_id)
    assert record is not None
    return Response({"key": issued.key, **record.to_json()}, status_code=201)


@get("/admin/me/keys/{key_id:str}/usage", opt=_OPT)
async def my_key_usage(
    key_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """Where one of the signed-in person's self-service keys stands now (404 for any other)."""
    services: Services = state.services
    _settings(services)
    record = await services.keys.get(key_id)
    if record is None or not _mine(record, _me(request)):
        raise GatewayError(Cause.NOT_FOUND, "You hold no key with that id.")
    return await key_usage(record, services.limiter, services.budgets, services.settings)


@delete("/admin/me/keys/{key_id:str}", opt=_OPT, status_code=200)
async def revoke_my_key(
    key_id: FromPath[str], request: Request[Any, Any, Any], state: State
) -> dict[str, Any]:
    """Revoke one of the signed-in person's self-service keys (404 for any other key)."""
    services: Services = state.services
    _settings(services)
    me = _me(request)
    record = await services.keys.get(key_id)
    if record is None or not _mine(record, me) or record.revoked_at is not None:
        raise GatewayError(Cause.NOT_FOUND, "You hold no working key with that id.")
    if not await services.keys.revoke(key_id, actor_of(me)):
        raise GatewayError(Cause.NOT_FOUND, "You hold no working key with that id.")
    return {"key_id": key_id, "revoked": True}


SELF_SERVICE_HANDLERS = [list_my_keys, create_my_key, my_key_usage, revoke_my_key]
