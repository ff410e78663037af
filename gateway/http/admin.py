"""The admin API's key routes (role ``admin``): list, show, create, revoke (one key or every key
of a person), change a key's limits, expiry, models, budget and networks, rotate; and the spend
budgets in force. The guard is :mod:`gateway.http.admin_guard`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath

from audit.store import parse_utc
from gateway.budget_report import report
from gateway.errors import Cause, GatewayError
from gateway.http.admin_call import caller, json_body, recorded
from gateway.key_records import (
    NAME_RULE,
    KeyRecord,
    validate_budget,
    validate_budget_period,
    validate_expiry,
    validate_limits,
    validate_models,
    validate_networks,
)
from gateway.key_usage import key_usage
from gateway.services import Services

__all__ = ["ADMIN_HANDLERS"]


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
    return (await _record(services, key_id)).to_json()


@get("/admin/keys/{key_id:str}/usage", opt={"role": "admin"})
async def key_usage_of(key_id: FromPath[str], state: State) -> dict[str, Any]:
    """Where a key stands now: its limits' buckets and requests in flight, its budgets."""
    services: Services = state.services
    record = await _record(services, key_id)
    return await key_usage(record, services.limiter, services.budgets, services.settings)


async def _record(services: Services, key_id: str) -> KeyRecord:
    """A key's record, revoked and expired ones too; 404 when there is none."""
    record = await services.keys.get(key_id)
    if record is None:
        raise GatewayError(Cause.NOT_FOUND, "No key with that id.")
    return record


@post("/admin/keys", opt={"role": "admin"}, status_code=201)
async def create_key(request: Request[Any, Any, Any], state: State) -> Response[Any]:
    services: Services = state.services
    body = await json_body(request, 8)
    allowed = {
        "budget_usd",
        "budget_period",
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
        issued = await recorded(
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
                max_parallel=body.get("max_parallel"),
                actor=caller(request),
                expires_at=_time(body.get("expires_at")),
                models=body.get("models"),
                budget_microusd=validate_budget(body.get("budget_usd")),
                budget_period=body.get("budget_period"),
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
    if not await services.keys.revoke(key_id, caller(request)):
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    return {"key_id": key_id, "revoked": True}


@post("/admin/keys/revoke", opt={"role": "admin"}, status_code=200)
async def revoke_users_keys(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """Revoke every active key in a person's name: ``{"user": NAME, "tenant"?: NAME}`` (someone
    leaving; each revocation recorded). Answers the ids revoked (none is not an error)."""
    services: Services = state.services
    body = await json_body(request, 2)
    user, tenant = body.get("user"), body.get("tenant")
    if set(body) - {"user", "tenant"} or not isinstance(user, str) or not user:
        raise GatewayError(
            Cause.INVALID_PARAMETER, f"Give {{'user': <{NAME_RULE}>}}, the person.", param="user"
        )
    if tenant is not None and not isinstance(tenant, str):
        raise GatewayError(Cause.INVALID_PARAMETER, "tenant: a name", param="tenant")
    try:
        revoked = await services.keys.revoke_user(user, caller(request), tenant)
    except ValueError as exc:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Invalid request: {exc}") from None
    return {"user": user, "revoked": revoked}


_LIMITS = ("requests_per_minute", "tokens_per_minute", "max_parallel")


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
    null, "tokens_per_minute": N | null, "max_parallel": N | null, "expires_at": TIME | null,
    "models": [NAME, ...] | null, "budget_usd": USD | null, "budget_period": "day" | "week" |
    "month" | null, "networks": [CIDR, ...] | null}``
    (limits and budget: null is the configured default, 0 none; expiry: null is never; models:
    null is every model; networks: null is anywhere; a field left out keeps its value)."""
    services: Services = state.services
    body = await json_body(request, 4)
    extra = set(body) - {
        *_LIMITS,
        "expires_at",
        "models",
        "budget_usd",
        "budget_period",
        "networks",
    }
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    record = await services.keys.get(key_id)
    if record is None or not record.active():
        raise GatewayError(Cause.NOT_FOUND, "No active key with that id.")
    actor = caller(request)
    try:
        # every field checked before any change is made
        expiry = validate_expiry(_time(body["expires_at"])) if "expires_at" in body else None
        rpm = body.get("requests_per_minute", record.requests_per_minute)
        tpm = body.get("tokens_per_minute", record.tokens_per_minute)
        parallel = body.get("max_parallel", record.max_parallel)
        validate_limits(rpm, tpm, parallel)
        validate_models(body.get("models"))
        validate_networks(body.get("networks"))
        budget = (
            validate_budget(body["budget_usd"]) if "budget_usd" in body else record.budget_microusd
        )
        period: Any = (
            validate_budget_period(body["budget_period"]) if "budget_period" in body else ...
        )
        changed = True
        if set(_LIMITS) & set(body):
            changed = await recorded(
                services.keys.set_limits(key_id, rpm, tpm, actor=actor, max_parallel=parallel)
            )
        if changed and "expires_at" in body:
            changed = await recorded(services.keys.set_expiry(key_id, expiry, actor=actor))
        if changed and "models" in body:
            changed = await recorded(services.keys.set_models(key_id, body["models"], actor=actor))
        if changed and {"budget_usd", "budget_period"} & set(body):
            changed = await recorded(
                services.keys.set_budget(key_id, budget, actor=actor, period=period)
            )
        if changed and "networks" in body:
            nets = body["networks"]
            changed = await recorded(services.keys.set_networks(key_id, nets, actor=actor))
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
    body = await json_body(request, 4, empty_ok=True)
    extra = set(body) - {"grace_seconds"}
    if extra:
        raise GatewayError(Cause.INVALID_PARAMETER, f"Unsupported field: '{sorted(extra)[0]}'.")
    try:
        done = await recorded(
            services.keys.rotate(
                key_id, grace_s=body.get("grace_seconds", 0), actor=caller(request)
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


@get("/admin/budgets", opt={"role": "admin"})
async def list_budgets(state: State) -> dict[str, Any]:
    """The spend budgets in force and what each has spent this period (gateway.budget_report)."""
    services: Services = state.services
    records = await services.keys.list()
    return await report(records, services.budgets, services.settings.budgets)


@get("/admin/limits", opt={"role": "admin"})
async def list_shared_limits(state: State) -> dict[str, Any]:
    """The limits people's, teams' and tenants' keys share, and where each stands now
    (gateway.limits_report)."""
    from gateway.limits_report import shared_limits

    services: Services = state.services
    records = await services.keys.list()
    return await shared_limits(records, services.limiter, services.settings)


ADMIN_HANDLERS = [
    list_keys,
    get_key,
    key_usage_of,
    create_key,
    revoke_key,
    revoke_users_keys,
    update_key,
    rotate_key,
    list_budgets,
    list_shared_limits,
]
