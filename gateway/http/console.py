"""The web console's page and the admin routes only it needs.

``GET /console/`` serves the console (:mod:`gateway.console`) under a strict
Content-Security-Policy: its own script and style only, no inline code, no framing, requests only
to this origin. The page itself needs no credential; everything it shows comes from ``/admin/...``
with the bearer credential the user typed, so nothing is visible without one.

``GET /admin/whoami`` — who the credential is and which parts of the console it may use (role
``admin`` or ``auditor``). ``POST /admin/policy/eval`` — the policy what-if of ``portcullis
policy eval``, asked of the running policy client (its bundle, deadline and decision cache) over
the running catalogue (role ``admin`` or ``auditor``): read-only, nothing is forwarded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect

from audit.store import parse_utc
from gateway.console import Asset, assets
from gateway.errors import Cause, GatewayError
from gateway.key_records import validate_principal_fields
from gateway.principal import Principal, actor_of
from gateway.services import Services

__all__ = ["CONSOLE_ADMIN_HANDLERS", "console_handlers"]

# Every console file is served with these: nothing but its own script and style, fetches only to
# this origin, no plugins, no framing (clickjacking), no referrer to anywhere.
_SECURITY = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-cache",
}
_ASSETS: dict[str, Asset] | None = None
READERS = ("admin", "auditor")


def _asset(name: str) -> Response[bytes]:
    asset = (_ASSETS or {}).get(name)
    if asset is None:
        raise GatewayError(Cause.NOT_FOUND, "No such console file.")
    return Response(asset.body, media_type=asset.media_type, headers=_SECURITY)


@get("/console", include_in_schema=False)
async def console_index(request: Request[Any, Any, Any]) -> Response[bytes] | Redirect:
    # litestar routes /console and /console/ alike; the page's relative URLs need the slash
    if not request.scope.get("raw_path", b"/").endswith(b"/"):
        return Redirect("/console/", status_code=308)
    return _asset("index.html")


@get("/console/{name:str}", include_in_schema=False)
async def console_file(name: FromPath[str]) -> Response[bytes]:
    return _asset(name)


@get("/admin/whoami", opt={"role": (*READERS, "staff")})
async def whoami(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    services: Services = state.services
    principal: Principal | None = request.scope["state"].get("admin_principal")
    roles = {"admin"} if principal is None else set(principal.roles)
    audit_roles = set(services.settings.audit.export_roles)
    sso = services.settings.admin.sso
    return {
        "actor": actor_of(principal),
        "user": None if principal is None else principal.user,
        "jurisdiction": None if principal is None else principal.jurisdiction,
        "roles": sorted(roles),
        "can": {
            "keys": "admin" in roles,
            "config": "admin" in roles,
            # the admin token reads every row; a key needs the routes' role, auditor, and one
            # of audit.export_roles (and reads within its scope)
            "audit": principal is None or ("auditor" in roles and bool(roles & audit_roles)),
            "policy": bool(roles & set(READERS)),
            # keys of one's own (gateway.http.self_service): a console session, when enabled
            "my_keys": principal is not None
            and principal.via_sso
            and sso is not None
            and sso.self_service is not None,
        },
    }


_EVAL_FIELDS = {
    "jurisdiction", "sector", "team", "roles", "tags", "model", "backends", "at", "pii", "marking",
}  # fmt: skip


def _bad(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(Cause.INVALID_PARAMETER, message, param=param)


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 64 or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: a list of at most 64 names")
    return tuple(value)


def _pii_counts(value: Any) -> dict[str, int] | None:
    """``{"EMAIL_ADDRESS": 1}``: the final phase's counts; absent: the route phase (no scan)."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 64:
        raise _bad("pii: an object of ENTITY: count.", param="pii")
    counts: dict[str, int] = {}
    for name, n in value.items():
        entity = name.strip().upper()
        if not entity.replace("_", "").isalnum() or not entity.isascii() or len(entity) > 64:
            raise _bad("pii: entity names like EMAIL_ADDRESS.", param="pii")
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 10_000:
            raise _bad("pii: counts from 0 to 10000.", param="pii")
        counts[entity] = n
    return counts


@post("/admin/policy/eval", opt={"role": READERS}, status_code=200)
async def policy_eval(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    """What-if: the decision the running policy gives a principal for a model (or backends) at a
    time, with and without PII counts; the body of ``portcullis policy eval --json``."""
    from gateway.http.admin_call import json_body
    from gateway.markings import LEVELS
    from gateway.policy.input import what_if_input

    services: Services = state.services
    body = await json_body(request, 4)
    extra = set(body) - _EVAL_FIELDS
    if extra:
        raise _bad(f"Unsupported field: '{sorted(extra)[0]}'.")
    team = body.get("team") or None
    try:
        if team is not None and not isinstance(team, str):
            raise ValueError("team: a name")
        roles, tags = _strings(body, "roles"), _strings(body, "tags")
        # wrong types are refused by the checks themselves (not a str: not a code, not a sector)
        jurisdiction = validate_principal_fields(
            "what-if", body.get("jurisdiction", ""), body.get("sector", ""), team, roles, tags
        )
    except ValueError as exc:
        name = str(exc).split(":", 1)[0]
        raise _bad(f"Invalid principal: {exc}.", param=name) from None
    backends = list(services.catalog.backends)
    try:
        wanted = _strings(body, "backends")
    except ValueError as exc:
        raise _bad(f"{exc}.", param="backends") from None
    if wanted:
        known = {b.id: b for b in backends}
        missing = [b for b in wanted if b not in known]
        if missing:
            raise _bad(f"backends: not in the catalogue: {missing[0]}.", param="backends")
        backends = [known[b] for b in wanted]
    model = body.get("model") or None
    if model is not None:
        canonical = services.catalog.canonical(model) if isinstance(model, str) else None
        if canonical is None:
            raise _bad("model: not served here.", param="model")
        serving = {b.id for b in services.catalog.backends_for(canonical)}
        backends = [b for b in backends if b.id in serving]
    if not backends:
        raise _bad("No candidate backends for that model.", param="model")
    when = datetime.now(UTC)
    if body.get("at"):
        try:
            when = parse_utc(str(body["at"]))
        except ValueError:
            raise _bad("at: an ISO 8601 time.", param="at") from None
    principal = Principal(
        key_id="what-if",
        user="what-if",
        jurisdiction=jurisdiction,
        sector=body["sector"],
        team=team,
        roles=roles,
        tags=tags,
    )
    pii = _pii_counts(body.get("pii"))
    marking = body.get("marking") or None
    if marking is not None and marking not in LEVELS:
        raise _bad(f"marking: one of {', '.join(LEVELS)}.", param="marking")
    inp = what_if_input(principal, backends, model, pii, when, services.settings.policy, marking)
    decision = await services.policy.decide(inp, tuple(b.id for b in backends))
    return {"input": inp, "decision": decision.to_json()}


def console_handlers() -> list[Any]:
    """The page's routes, its files read now (a broken install fails at start, not per view)."""
    global _ASSETS
    _ASSETS = assets()
    return [console_index, console_file]


CONSOLE_ADMIN_HANDLERS = [whoami, policy_eval]
