"""The OPA engine: ``opa-python-client`` against an OPA sidecar serving the same bundle.

Build the bundle with ``portcullis policy bundle OUT.tar.gz`` (same modules, same data document,
``.manifest`` revision) and run ``opa run --server --bundle OUT.tar.gz`` beside the gateway. The
sidecar answers ``POST /v1/data/portcullis/decision``; an undefined result (``{}``), an HTTP error
or a connection error raises, and the client fails closed. No retries here: the client's
deadline is the only clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opa_client import AsyncOpaClient

__all__ = ["OpaEngine", "OpaUndefined"]


class OpaUndefined(LookupError):
    """OPA answered without a ``result``: the decision is undefined."""


class OpaEngine:
    """:class:`gateway.policy.contract.PolicyEngine` over OPA's REST API."""

    remote = True  # the revision is whatever the sidecar has loaded; decisions carry it

    def __init__(
        self, url: str, path: str = "portcullis/decision", *, timeout_s: float = 1.0
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("opa_url must be http(s)://host:port")
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            retries=0,
            timeout=timeout_s,
        )
        package, _, rule = path.replace("/", ".").rpartition(".")
        self._package = package
        self._rule = rule
        self._revision = "opa:unknown"
        self._started = False

    @property
    def revision(self) -> str:
        return self._revision

    async def start(self) -> None:
        """Open the session and learn the sidecar's bundle revision (best effort)."""
        await self._client._init_session()
        self._started = True
        try:
            rev = await self._client.query_rule({}, "bundle", "revision")
            if isinstance(rev.get("result"), str):
                self._revision = rev["result"]
        except Exception:  # the sidecar may come up later; ready() reports it  # noqa: BLE001, S110 (fail closed)
            pass

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self._started:
            await self.start()
        answer = await self._client.query_rule(dict(policy_input), self._package, self._rule)
        if not isinstance(answer, Mapping) or "result" not in answer:
            raise OpaUndefined("OPA returned no result for the decision")
        result = answer["result"]
        if isinstance(result, Mapping) and isinstance(result.get("bundle_revision"), str):
            self._revision = result["bundle_revision"]
        return result  # type: ignore[no-any-return]

    async def ready(self) -> bool:
        try:
            if not self._started:
                await self.start()
            return bool(await self._client.check_health())
        except Exception:  # noqa: BLE001 (fail closed)
            return False

    async def close(self) -> None:
        await self._client.close_connection()
