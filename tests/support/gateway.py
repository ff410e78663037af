"""Run the real gateway app under uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from gateway.config import Settings
from gateway.http.app import Components, create_app
from gateway.storage.migrate import upgrade

__all__ = ["RunningGateway", "with_room"]

# The deadlines a test world widens where its configuration left them at their defaults, so
# that a loaded CI machine is not what a test measures: (section, field, the test world's value).
# A test about one of these deadlines sets it, and keeps it. The policy deadline (at most
# 250 ms) and the PII guard's (2 s) are not widened: their own tests rely on their defaults.
ROOMY_DEADLINES = (
    ("audit", "intent_deadline_ms", 5000),  # the write-ahead intent; default 1 s
    ("keys", "lookup_deadline_ms", 5000),  # a key not in the cache; default 1 s
    ("limits", "deadline_ms", 1000),  # Redis, with redis.url; default 100 ms
    ("budgets", "deadline_ms", 5000),  # a scope's spend read the first time; default 1 s
)


def with_room(settings: Settings) -> Settings:
    """``settings`` with each of :data:`ROOMY_DEADLINES` widened where the configuration did
    not set it (``model_fields_set``): a set value, even the default's, is kept."""
    update = {
        section: part.model_copy(update={field: value})
        for section, field, value in ROOMY_DEADLINES
        if field not in (part := getattr(settings, section)).model_fields_set
    }  # one field per section
    return settings.model_copy(update=update) if update else settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningGateway:
    ADMIN_TOKEN = "test-admin-token-0123456789abcdef"

    def __init__(
        self,
        settings: Settings,
        components: Components | None = None,
        reload_from: Callable[[], Settings] | None = None,
        *,
        room: bool = True,
    ) -> None:
        """``room``: widen the deadlines the configuration left at their defaults
        (:func:`with_room`); False where a test compares the running configuration with a
        file of the same content (the configuration archive)."""
        widen = with_room if room else (lambda settings: settings)
        self.settings = widen(settings)
        self.components = components
        self.reload_from = (lambda: widen(reload_from())) if reload_from else None
        self.port = _free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> RunningGateway:
        upgrade(self.settings.database_url())
        app = self.app = create_app(self.settings, self.components, reload_from=self.reload_from)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("gateway failed to start")
            time.sleep(0.05)
        raise RuntimeError("gateway did not start in time")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)

    @property
    def app_state(self) -> Any:
        assert self._server is not None
        return self._server.config.loaded_app  # type: ignore[attr-defined]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        parse: bool = True,
    ) -> tuple[int, dict[str, str], Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None and not (headers and "Content-Type" in headers):
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = resp.read()
                return resp.status, dict(resp.headers), _maybe_json(payload) if parse else payload
        except urllib.error.HTTPError as err:
            payload = err.read()
            return err.code, dict(err.headers), _maybe_json(payload)

    def tasks(self) -> list[str]:
        """The names of the coroutines of the tasks alive on the gateway's event loop (found
        through its metrics heartbeat, which runs for the app's life): a request that ended
        must leave none of its own behind."""
        heartbeat = self.app.state.services.metrics._heartbeat
        assert heartbeat is not None, "the gateway's lifespan has not started"

        async def names() -> list[str]:
            me = asyncio.current_task()
            return sorted(t.get_coro().__qualname__ for t in asyncio.all_tasks() if t is not me)  # type: ignore[union-attr]

        return asyncio.run_coroutine_threadsafe(names(), heartbeat.get_loop()).result(5)

    def metric(self, name: str, labels: str = "") -> float:
        """A metric's value from ``/metrics`` (``labels`` as exposed: ``limit="requests"``), 0
        when it is not there."""
        _, _, text = self.request("GET", "/metrics", parse=False)
        prefix = f"{name}{{{labels}}}" if labels else f"{name} "
        lines = [ln for ln in text.decode().splitlines() if ln.startswith(prefix)]
        return float(lines[0].split()[-1]) if lines else 0.0

    def reload(self) -> dict[str, Any]:
        """``POST /admin/config/reload`` with the admin token; its answer (a 200 asserted)."""
        status, _, body = self.request("POST", "/admin/config/reload", token=self.ADMIN_TOKEN)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def create_key(self, **fields: Any) -> str:
        """A key made through the admin API. Tried again (three times in all) when the audit
        trail missed its deadline for the key's record (503 ``audit_unavailable``: nothing was
        made) — a loaded CI machine did, in a test about something else (2026-12-01); a test
        of that refusal calls the API itself."""
        for _ in range(3):
            status, _, body = self.request("POST", "/admin/keys", fields, token=self.ADMIN_TOKEN)
            if status != 503 or body.get("error", {}).get("code") != "audit_unavailable":
                break
            time.sleep(0.5)
        assert status == 201, body
        return str(body["key"])


def _maybe_json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def write_admin_token(data_dir: Path) -> Path:
    path = data_dir / "admin.token"
    path.write_text(RunningGateway.ADMIN_TOKEN)
    return path
