"""The admin API's guard. Deny by default: every route must name the role it requires in ``opt``.

Callers authenticate with the admin token (``Authorization: Bearer <token>``, role ``admin``,
which may do everything), with an API key whose principal holds the route's role (for example
``auditor``), or with a console session from single sign-on. A route under ``/admin`` without
``opt={"role": ...}`` refuses everyone. A valid key refused for want of the role is recorded in
the audit trail (kind ``access``). With ``admin.networks``, a caller from elsewhere is refused
before any credential is looked at.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import Cause, GatewayError
from gateway.http.body import client_address
from gateway.principal import Principal, actor_of, address_in
from gateway.services import Services
from gateway.sso import SESSION_PREFIX

__all__ = ["admin_guard", "from_admin_networks"]

log = logging.getLogger("portcullis")


_SESSION_ONLY = "This action needs a console session from single sign-on."


def from_admin_networks(services: Services, scope: Any) -> bool:
    """Whether the caller's address (after a trusted proxy) is one ``admin.networks`` lets use
    the admin API and the console's sign-in; with none set, every address is."""
    allowed = services.settings.admin.parsed_networks
    return allowed is None or address_in(client_address(scope), allowed)


async def admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    role = handler.opt.get("role")  # a role, or a tuple of roles any of which will do
    roles = (role,) if isinstance(role, str) else role
    if not (isinstance(roles, tuple) and roles and all(isinstance(r, str) and r for r in roles)):
        raise GatewayError(Cause.FORBIDDEN, "This admin route declares no role; it is closed.")
    services: Services = connection.app.state.services
    if not from_admin_networks(services, connection.scope):
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
        principal = await services.keys.authenticate(auth, client_address(connection.scope))
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
