"""The admin API's configuration routes (role ``admin``): reload the policy bundle, reload the
configuration file's backends (:mod:`gateway.reload`), and show the running catalogue; and
(``admin`` or ``auditor``) the settings in force that weaken enforcement."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import State

from gateway.errors import Cause, GatewayError
from gateway.http.admin_call import caller, no_body
from gateway.insecure import weakening
from gateway.reload import Reloader
from gateway.services import Services

__all__ = ["CONFIG_HANDLERS"]


@post("/admin/policy/reload", opt={"role": "admin"}, status_code=200)
async def reload_policy(request: Request[Any, Any, Any], state: State) -> dict[str, Any]:
    await no_body(request)
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
    await no_body(request)
    services: Services = state.services
    if services.settings.server.workers > 1:
        raise GatewayError(
            Cause.CONFLICT,
            "This gateway runs several workers and this call would reach only one: send SIGHUP "
            "to the server process instead (it restarts every worker on the new file).",
        )
    reloader: Reloader = state.reloader
    report = await reloader.reload("admin", caller(request))
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
        # the settings in force that weaken what is enforced, each with what it means
        "weakened": weakening(services.settings),
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


@get("/admin/config/weakened", opt={"role": ("admin", "auditor")})
async def show_weakened(state: State) -> dict[str, Any]:
    """The settings in force that weaken what the gateway enforces (an auditor may see these,
    not the whole catalogue): the console's overview lists them."""
    services: Services = state.services
    return {"object": "list", "data": weakening(services.settings)}


CONFIG_HANDLERS = [reload_policy, reload_config, show_config, show_weakened]
