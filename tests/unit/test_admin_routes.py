"""Deny by default: every admin route declares the role it needs, and one that does not is closed."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from gateway.config import Settings
from gateway.http.admin import ADMIN_HANDLERS
from gateway.http.admin_guard import admin_guard
from gateway.http.app import create_app
from gateway.http.audit_admin import AUDIT_HANDLERS
from gateway.http.config_admin import CONFIG_HANDLERS
from gateway.http.console import CONSOLE_ADMIN_HANDLERS
from gateway.http.errors import EXCEPTION_HANDLERS
from gateway.http.self_service import SELF_SERVICE_HANDLERS
from gateway.http.sso import SSO_ADMIN_HANDLERS


def test_every_admin_route_declares_a_role(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path))
    admin_routes = [r for r in app.routes if r.path.startswith("/admin")]
    assert admin_routes
    for route in admin_routes:
        for handler in route.route_handlers:  # type: ignore[attr-defined]
            assert admin_guard in handler.resolve_guards(), route.path
            if handler.http_methods == {"OPTIONS"}:
                continue  # litestar's automatic OPTIONS handler: no role, so the guard closes it
            role = handler.opt.get("role")
            assert isinstance(role, str) or (
                isinstance(role, tuple) and role and all(isinstance(r, str) for r in role)
            ), route.path


def test_admin_route_without_role_refuses_everyone() -> None:
    @get("/admin/forgotten")
    async def forgotten() -> str:
        return "secret"

    app = Litestar([forgotten], guards=[admin_guard], exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    with TestClient(app) as client:
        r = client.get("/admin/forgotten", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", [(), [], ("",), ("admin", 7), 7, None])
def test_a_malformed_role_declaration_closes_the_route(role: object) -> None:
    @get("/admin/odd", opt={"role": role})
    async def odd() -> str:
        return "secret"

    app = Litestar([odd], guards=[admin_guard], exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    with TestClient(app) as client:
        r = client.get("/admin/odd", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and "declares no role" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "handler",
    [
        *ADMIN_HANDLERS, *CONFIG_HANDLERS, *AUDIT_HANDLERS, *CONSOLE_ADMIN_HANDLERS, *SSO_ADMIN_HANDLERS,
        *SELF_SERVICE_HANDLERS,
    ],
    ids=lambda h: h.handler_name,
)  # fmt: skip
def test_admin_handlers_are_listed(handler) -> None:  # type: ignore[no-untyped-def]
    role = handler.opt["role"]
    roles = set((role,) if isinstance(role, str) else role)
    assert roles <= {"admin", "auditor", "staff"}
    if "staff" in roles:  # staff sign in only to see who they are and make keys of their own
        assert handler.handler_name == "whoami" or handler.opt.get("session_only") is True
