"""The per-request context that the pipeline's steps fill in, and the audit event built from it."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.config.backends import BackendSpec
from gateway.errors import Cause
from gateway.http.validate import ParsedRequest
from gateway.pii.actions import MAX_SUBJECTS
from gateway.policy.contract import Decision
from gateway.principal import Principal
from gateway.views import NO_PII, backend_facts, decision_view, principal_view

if TYPE_CHECKING:
    from gateway.pii.contract import Restorer
    from gateway.prompts import Canary
    from gateway.tracing import TraceIds

__all__ = ["RequestContext"]


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    client_addr: str | None
    started: float = field(default_factory=time.perf_counter)
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    principal: Principal | None = None
    parsed: ParsedRequest | None = None
    model: str | None = None
    candidates: tuple[BackendSpec, ...] = ()
    decision: Decision | None = None
    policy_input: dict[str, Any] | None = None
    backend: BackendSpec | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0
    error_code: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    pii_counts: dict[str, int] = field(default_factory=dict)
    pii_subjects: Sequence[str] = ()  # keyed digests of the values found (the subject index)
    pii_output_subjects: Sequence[str] = ()  # and of the new values found in the answer
    pii_actions: dict[str, dict[str, int]] = field(default_factory=dict)
    pii_output: dict[str, int] = field(default_factory=dict)  # new PII found in the answer
    # Content kinds the detector could not read (image_url, token_ids, ...), and the insecure
    # switches that let this request out without a check it would have failed.
    uninspectable: list[str] = field(default_factory=list)
    insecure: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    upstream_s: float = 0.0
    first_byte_s: float | None = None
    prompt_digest: str | None = None
    answer_hmac: Any = None  # hmac object, updated as the answer streams
    forwarded: bool = False
    # The gateway asked the backend for stream usage the caller did not ask for: the relay
    # records it and keeps it from the caller (``BackendSpec.stream_usage``).
    hide_usage: bool = False
    answered: bool = False  # a stream's [DONE] has been sent: the client has the whole answer
    # Answer chunks (SSE events) relayed to the caller: what a stream cut short before the
    # backend's usage chunk can say of its output (a chunk usually carries one token).
    relayed_chunks: int = 0
    # The model name answers carry, when the backend knows the model by another name
    # (``upstream_model``: a vLLM path, a deployment name) that callers should not see.
    answer_model: str | None = None
    # The API the caller used when it is not ``endpoint`` (``responses``, served as chat): the
    # audit record and the metrics name it.
    api: str | None = None
    # The system prompts added to the request (gateway.prompts), and their canary's screen.
    system_prompts: tuple[str, ...] = ()
    canary: Canary | None = None
    # The request's trace ids and timed steps, when it is traced (gateway.tracing).
    trace: TraceIds | None = None
    # The tightest spend budget's x-budget-* headers for the answer (gateway.budgets), if any.
    budget_headers: tuple[tuple[bytes, bytes], ...] = ()
    # What shadow mode let through that would have been refused (gateway.admission):
    # "requests", "tokens", "parallel", "budget:<scope>".
    shadowed: list[str] = field(default_factory=list)
    # Content capture (gateway.capture): the answer as relayed (a whole answer, or a stream's
    # event payloads) while capturing, else None; and whether the request was captured.
    capture: list[Any] | None = None
    content_captured: bool = False
    # The request's JSON as the caller sent it (for a Responses request, before its chat form).
    caller_body: Any = None
    # The highest security classification marking in the request (gateway.markings), or None.
    marking: str | None = None

    def client_left(self) -> None:
        """Record that the client went away: 499, unless it already had the whole answer (a
        stream's ``[DONE]``: the SDK may close before the backend's response has ended)."""
        if not self.answered:
            self.status, self.error_code = Cause.CLIENT_CLOSED.status, Cause.CLIENT_CLOSED.code

    def relayed(self, data: bytes) -> None:
        """One answer chunk (an SSE event's data) sent to the caller: in the answer's digest,
        counted, and kept while the request is being captured (gateway.capture)."""
        self.answer_hmac.update(data)
        self.relayed_chunks += 1
        if self.capture is not None:
            self.capture.append(data)

    def answer_scanned(self, restorer: Restorer) -> None:
        """What the scan of the answer found that the prompt did not hold: counts by type, and
        the values' keyed digests for the data-subject index (empty unless it is kept)."""
        self.pii_output = dict(restorer.new_pii)
        self.pii_output_subjects = sorted(restorer.new_subjects)[:MAX_SUBJECTS]

    def mark(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + (now - since)
        if self.trace is not None:  # a child span of the request's (gateway.tracing)
            self.trace.steps.append((step, since, now, {}))
        return now

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def start_answer_digest(self, key: bytes) -> None:
        self.answer_hmac = hmac.new(key, digestmod=hashlib.sha256)

    def cost_microusd(self) -> int | None:
        """What the request cost on its backend, from the tokens it reported; None where the
        backend has no price for the model or reported no tokens."""
        if self.backend is None or not self.usage:
            return None
        return self.backend.cost_microusd(self.model, self.usage)

    def _usage(self) -> dict[str, int]:
        """The backend's token counts, and their cost where the backend has a price
        (``cost_microusd``); for a stream that ended without them (the client left, the backend
        failed or stalled, or it reports none), the chunks relayed instead."""
        usage = dict(self.usage)
        cost = self.cost_microusd()
        if cost is not None:
            usage["cost_microusd"] = cost
        if "total_tokens" in usage or not self.relayed_chunks:
            return usage
        return {**usage, "relayed_chunks": self.relayed_chunks}

    def event(self, key_id: str, config_hash: str, record_client: bool) -> dict[str, Any]:
        """The audit event: facts, counts, digests and timings, never content."""
        p = self.principal
        d = self.decision
        b = self.backend
        total = self.elapsed
        return {
            "request_id": self.request_id,
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "endpoint": self.api or self.endpoint,
            "principal": principal_view(p) if p else None,
            "model": self.model,
            "stream": bool(self.parsed and self.parsed.stream),
            "backend": backend_facts(b) if b else None,
            "attempts": self.attempts,
            "decision": decision_view(d) if d else None,
            "bundle_revision": d.bundle_revision if d else None,
            "config_hash": config_hash,
            "decision_input": self.policy_input,
            "pii": {
                "counts": dict(self.pii_counts),
                "actions": self.pii_actions,
                "output": dict(self.pii_output),
                "uninspectable": self.uninspectable,
                "insecure": self.insecure,
                "subjects": self.pii_subjects,
                "output_subjects": self.pii_output_subjects,
            }
            if self.pii_counts
            or self.pii_actions
            or self.pii_output
            or self.uninspectable
            or self.insecure
            else NO_PII,
            "usage": self._usage(),
            "latency_ms": {
                "total": round(total * 1000, 3),
                "gateway": round((total - self.upstream_s) * 1000, 3),
                "upstream": round(self.upstream_s * 1000, 3),
                "first_byte": round(self.first_byte_s * 1000, 3) if self.first_byte_s else None,
                **{k: round(v * 1000, 3) for k, v in self.timings.items()},
            },
            "status": self.status,
            "error_code": self.error_code,
            "client_address": self.client_addr if record_client else None,
            "digests": {
                "key_id": key_id,
                "prompt": self.prompt_digest,
                "answer": self.answer_hmac.hexdigest() if self.answer_hmac is not None else None,
            },
            "forwarded": self.forwarded,
            "system_prompts": {
                "ids": self.system_prompts,
                "canary_leaks": self.canary.leaks if self.canary is not None else None,
            }
            if self.system_prompts
            else None,
            "content_captured": self.content_captured,
            "shadowed": self.shadowed,
        }
