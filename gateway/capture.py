"""Content capture for requests whose policy decision obliges it (legal hold).

When the decision's obligation ``content_capture`` is true and the operator has turned the
feature on (``audit.content_capture: true``), the gateway keeps the request as the caller sent it
and the answer as the caller received it, sealed with AES-256-GCM under the tenant's key
(:class:`audit.vault.ContentVault`): never in the audit log itself, which records only that it
was captured (``content_captured``).

- **Before anything leaves**: right after the write-ahead intent, the request is sealed and
  stored (``{"request": ..., "complete": false}``; a ``/v1/responses`` or ``/v1/messages``
  request as the caller sent it, not its chat form) within the audit deadline; if the store does
  not take it, the request is refused with 503 ``audit_unavailable`` and nothing is sent, as for
  the intent itself.
- **After the answer**: the capture is replaced by the request with the answer (a whole answer's
  JSON — for ``/v1/responses`` the Responses object, for ``/v1/messages`` the Messages one —; a
  stream's events as relayed, each decoded — for a translated stream the chat events it is
  translated from), the status and ``complete: true``. The answer is already out by then: a
  store that fails now is logged and counted
  (``portcullis_fail_closed_total{component="content_capture_answer"}``), and the request's capture
  stays.
- With the obligation but the feature off, the request goes out uncaptured as an insecure pass
  (``audit.content_capture:false`` in the record's ``pii.insecure``, counted, logged at most once a
  minute).

Reading is an audited administrative action (``GET /admin/audit/content/{request_id}``,
``portcullis audit content``); erasure is crypto-shredding (``portcullis audit shred``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from audit.vault import ContentVault
from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.metrics import Metrics

__all__ = ["Capture", "obliged"]

log = logging.getLogger("portcullis.capture")


def obliged(ctx: RequestContext) -> bool:
    """Whether the request's decision obliges its content to be captured."""
    return ctx.decision is not None and ctx.decision.obligations.get("content_capture") is True


def _events(chunks: list[Any]) -> list[Any]:
    out: list[Any] = []
    for data in chunks:
        try:
            out.append(json.loads(data))
        except ValueError:
            out.append(bytes(data).decode("utf-8", "replace"))
    return out


class Capture:
    def __init__(self, vault: ContentVault, deadline_s: float, metrics: Metrics) -> None:
        self._vault = vault
        self._deadline_s = deadline_s
        self._metrics = metrics

    def _doc(self, ctx: RequestContext, *, complete: bool) -> bytes:
        assert ctx.parsed is not None
        doc: dict[str, Any] = {
            "version": 1,
            "request_id": ctx.request_id,
            "endpoint": ctx.api or ctx.endpoint,
            "request": ctx.caller_body if ctx.caller_body is not None else ctx.parsed.body,
            "complete": complete,
        }
        if complete:
            chunks = ctx.capture or []
            streamed = bool(ctx.parsed.stream)
            doc["status"] = ctx.status
            doc["answer"] = None if streamed or not chunks else chunks[0]
            doc["stream"] = _events(chunks) if streamed else None
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _tenant(self, ctx: RequestContext) -> str:
        return ctx.principal.tenant if ctx.principal is not None else "default"

    async def request(self, ctx: RequestContext) -> None:
        """Seal the request before it is sent; 503 ``audit_unavailable`` if the store does not
        take it in time (nothing is sent)."""
        try:
            await asyncio.wait_for(
                self._vault.capture(
                    ctx.request_id, self._tenant(ctx), self._doc(ctx, complete=False)
                ),
                self._deadline_s,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of the store: do not forward
            self._metrics.fail_closed.labels("content_capture").inc()
            log.error("content capture failed: %s", type(exc).__name__)
            raise GatewayError(
                Cause.AUDIT_UNAVAILABLE,
                "Policy requires this request to be captured, and the capture store did not take "
                "it; nothing was sent.",
                headers={"retry-after": "1"},
            ) from None
        ctx.capture = []
        ctx.content_captured = True

    async def answer(self, ctx: RequestContext) -> None:
        """Replace the capture with request and answer (after the answer went out)."""
        if not ctx.content_captured:
            return
        try:
            await asyncio.wait_for(
                self._vault.capture(
                    ctx.request_id, self._tenant(ctx), self._doc(ctx, complete=True), replace=True
                ),
                self._deadline_s,
            )
        except Exception as exc:  # noqa: BLE001 - the answer is out; count and log the loss
            self._metrics.fail_closed.labels("content_capture_answer").inc()
            log.error("content capture of an answer failed: %s", type(exc).__name__)
