"""The one place that knows the order of a request's steps.

    parse -> authenticate -> resolve -> admit -> decide(route) -> inspect -> decide(final)
          -> write-ahead audit -> transform -> route & call -> restore -> record

Each step is a small function over the :class:`RequestContext`; a step stops the request by
raising :class:`GatewayError`. The audit record is written in ``finally`` by the caller
(:func:`finish`), for denials and failures too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec

from audit.event import UNSENT_OUTCOMES
from gateway.admission import admit
from gateway.capture import obliged
from gateway.catalog import key_allows
from gateway.config.backends import BackendSpec
from gateway.context import RequestContext
from gateway.errors import Cause, GatewayError
from gateway.http.validate import ParsedRequest, known_params
from gateway.insecure import InsecurePasses
from gateway.limiter import Reservation
from gateway.markings import marking_level
from gateway.outcome import usage_of
from gateway.permitted import permitted
from gateway.pii.contract import Applied, Inspection, Restorer
from gateway.policy.contract import Decision
from gateway.policy.input import build_policy_input
from gateway.prompts import Injection, Screened, plan
from gateway.services import Services
from gateway.streaming import relay_stream
from gateway.tracing import new_span_id
from gateway.upstream import UpstreamFailure

__all__ = ["Pipeline"]

log = logging.getLogger("portcullis.pipeline")

# What only the NER model finds (gateway.pii.ner.NER_ENTITIES; not imported: numpy and the
# model's code stay unloaded while the guard is off). A test pins the two equal.
_NER_TYPES = frozenset({"PERSON", "LOCATION"})
T = TypeVar("T")
_encode = msgspec.json.Encoder().encode


class BodyFor(Protocol):
    """The body to send to a backend; ``ask_usage=False`` leaves out the ``stream_options`` the
    gateway adds to ask for stream usage."""

    def __call__(self, backend: BackendSpec, ask_usage: bool = True) -> bytes: ...


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.s = services
        # Backends that refused the ``stream_options`` we add (see ``BackendSpec.stream_usage``):
        # not asked again in this process.
        self.refuses_stream_options: set[str] = set()
        self.insecure = InsecurePasses(services.metrics)

    # -- steps ---------------------------------------------------------------------------

    async def decide(self, ctx: RequestContext, pii_counts: dict[str, int] | None) -> Decision:
        assert ctx.principal is not None and ctx.parsed is not None
        t0 = time.perf_counter()
        ctx.policy_input = build_policy_input(
            principal=ctx.principal,
            endpoint=ctx.endpoint,
            api=ctx.api,
            model=ctx.model or ctx.parsed.model,
            stream=ctx.parsed.stream,
            tools=ctx.parsed.tools,
            backends=list(ctx.candidates),
            pii_counts=pii_counts,
            now=datetime.now(UTC),
            settings=self.s.settings.policy,
            marking=ctx.marking,
        )
        try:
            decision = await self.s.policy.decide(
                ctx.policy_input, tuple(b.id for b in ctx.candidates)
            )
        except GatewayError as exc:
            if exc.cause is Cause.POLICY_UNAVAILABLE:
                self.s.metrics.fail_closed.labels("policy").inc()
            raise
        ctx.decision = decision
        ctx.mark("policy" if pii_counts is None else "policy_final", t0)
        if not decision.allow:
            for r in decision.denials:
                self.s.metrics.denials.labels(r.rule).inc()
            raise GatewayError(
                Cause.POLICY_DENIED,
                _denial_message(decision),
                details={
                    "reasons": [r.to_json() for r in decision.denials],
                    "bundle_revision": decision.bundle_revision,
                },
            )
        return decision

    async def inspect(self, ctx: RequestContext, decision: Decision) -> Inspection | None:
        guard = self.s.pii
        assert ctx.parsed is not None
        if guard is None:
            return None
        entities = decision.entities_needed()
        if entities is not None and not entities:
            return None  # no permitted backend needs anything protected
        t0 = time.perf_counter()
        try:
            inspection = await guard.inspect(
                ctx.endpoint, ctx.parsed.body, entities, strict=decision.strict_pii
            )
        except GatewayError as exc:
            if exc.cause is Cause.PII_UNAVAILABLE:
                self.s.metrics.fail_closed.labels("pii").inc()
            raise
        ctx.mark("pii", t0)
        ctx.pii_counts = dict(inspection.counts)
        ctx.pii_subjects = inspection.subjects
        return inspection

    async def write_ahead(self, ctx: RequestContext) -> None:
        t0 = time.perf_counter()
        try:
            await self.s.audit.intent(self._event(ctx))
        except Exception as exc:  # noqa: BLE001 - any failure of the store means: do not forward
            self.s.metrics.fail_closed.labels("audit").inc()
            log.error("audit intent failed: %s", type(exc).__name__)
            raise GatewayError(
                Cause.AUDIT_UNAVAILABLE,
                "The audit store cannot record this request; nothing was sent.",
                headers={"retry-after": "1"},
            ) from None
        ctx.mark("audit_intent", t0)

    async def _capture(self, ctx: RequestContext) -> None:
        """The request, sealed before it leaves, when policy obliges it (gateway.capture)."""
        if self.s.capture is not None:
            t0 = time.perf_counter()
            await self.s.capture.request(ctx)
            ctx.mark("capture", t0)
        else:
            self.insecure.record(
                ctx,
                "audit.content_capture:false",
                "audit.content_capture is false (policy asked for their content to be captured)",
            )

    def _event(self, ctx: RequestContext) -> dict[str, Any]:
        return ctx.event(
            self.s.secret.secret_id, self.s.config_hash, self.s.settings.audit.record_client_address
        )

    # -- the whole request ---------------------------------------------------------------

    async def prepare(
        self, ctx: RequestContext, parsed: ParsedRequest
    ) -> tuple[list[BackendSpec], BodyFor, dict[str, Applied]]:
        """Everything up to the forward: returns the backends to try and the body per backend."""
        assert ctx.principal is not None
        ctx.parsed = parsed
        t0 = time.perf_counter()
        resolution = self.s.catalog.resolve(parsed.model, ctx.endpoint)
        if not key_allows(self.s.catalog, ctx.principal, resolution.model):
            raise self.s.catalog.not_found()  # the same answer as a model not served
        ctx.model, ctx.candidates = resolution.model, resolution.candidates
        # The request's JSON, encoded once: searched for classification markings, its digest,
        # and what a backend is sent when nothing in it changes for that backend (no pseudonyms,
        # upstream name, options or removals).
        encoded = _encode(parsed.body)
        ctx.marking = marking_level(ctx.endpoint, parsed.body, encoded)
        t0 = ctx.mark("resolve", t0)
        decision = await self.decide(ctx, None)
        inspection = await self.inspect(ctx, decision)
        if inspection is not None and ctx.pii_counts:
            decision = await self.decide(ctx, dict(ctx.pii_counts))
        backends = permitted(self.s, ctx, decision, self.insecure)
        if self.s.pii is None or not self.s.settings.pii.ner:  # a switch that turns checks off
            needed = decision.entities_needed(tuple(b.id for b in backends))  # None: every type
            if self.s.pii is None and needed != frozenset():
                self.insecure.record(ctx, "pii.enabled:false", "pii.enabled is false")
            elif self.s.pii is not None and (needed is None or needed & _NER_TYPES):
                self.insecure.record(
                    ctx, "pii.ner:false", "pii.ner is false (names and places are not detected)"
                )
        injection = self._injection(ctx, decision)
        ctx.prompt_digest = hmac.new(self.s.digest_key, encoded, hashlib.sha256).hexdigest()
        applied: dict[str, Applied] = {}

        def body_for(backend: BackendSpec, ask_usage: bool = True) -> bytes:
            body = parsed.body
            if inspection is not None and ctx.pii_counts:
                key = _action_key(decision, backend.id, ctx.pii_counts)
                hit = applied.get(key)
                if hit is None:
                    t1 = time.perf_counter()
                    hit = self.s.pii.apply(  # type: ignore[union-attr]
                        inspection,
                        lambda e: decision.action_for(backend.id, e),
                        ctx.principal.tenant,  # type: ignore[union-attr]
                        redact_new=decision.redact_new_pii,
                    )
                    ctx.mark("pii_apply", t1)
                    applied[key] = hit
                applied[backend.id] = hit
                body = hit.body
                ctx.pii_actions = {e: dict(a) for e, a in hit.actions_taken.items()}
            if injection is not None:
                body = injection.apply(ctx.endpoint, body)
            upstream_model = backend.upstream_name(ctx.model)
            if upstream_model != body.get("model"):
                body = {**body, "model": upstream_model}
            limit = backend.max_output_tokens
            if limit is not None:
                for name in ("max_tokens", "max_completion_tokens"):
                    asked = body.get(name)
                    if isinstance(asked, int) and asked > limit:
                        body = {**body, name: limit}
            ctx.hide_usage = (
                ask_usage
                and parsed.stream
                and not parsed.include_usage
                and backend.stream_usage
                and ctx.endpoint != "embeddings"
                and backend.id not in self.refuses_stream_options
            )
            if ctx.hide_usage:
                options = {**(body.get("stream_options") or {}), "include_usage": True}
                body = {**body, "stream_options": options}
            foreign = self.s.catalog.passthrough.difference(backend.passthrough_params)
            if foreign and not foreign.isdisjoint(body):
                known = known_params(ctx.endpoint)
                body = {k: v for k, v in body.items() if k not in foreign or k in known}
            return encoded if body is parsed.body else _encode(body)

        return backends, body_for, applied

    def _injection(self, ctx: RequestContext, decision: Decision) -> Injection | None:
        """The system prompts policy asks for (gateway.prompts), checked against the request
        before anything is written or sent; none for embeddings."""
        if not decision.system_prompts or ctx.endpoint == "embeddings":
            return None
        assert ctx.parsed is not None
        injection = plan(decision.system_prompts, self.s.settings.system_prompts)
        injection.apply(ctx.endpoint, ctx.parsed.body)  # a token-id prompt: 422 now, not later
        ctx.system_prompts, ctx.canary = injection.ids, injection.canary
        return injection

    async def reserve(self, ctx: RequestContext, parsed: ParsedRequest) -> Reservation:
        """Admit the request against its key's limits and its budgets (gateway.admission)."""
        return await admit(self.s, ctx, parsed)

    async def _forward(
        self,
        ctx: RequestContext,
        parsed: ParsedRequest,
        call: Callable[[BackendSpec, str, bytes, str | None], Awaitable[T]],
    ) -> tuple[T, Applied | None]:
        """Prepare, write ahead, then ``call`` permitted backends in order until one answers."""
        backends, body_for, applied = await self.prepare(ctx, parsed)
        await self.write_ahead(ctx)
        if obliged(ctx):
            await self._capture(ctx)

        async def attempt(backend: BackendSpec) -> T:
            body = body_for(backend)
            ctx.forwarded = True
            try:
                return await _send(ctx, backend, call, body)
            except UpstreamFailure as failure:
                if not (ctx.hide_usage and failure.status in (400, 422)):
                    raise
                # Perhaps the ``stream_options`` we added, not the caller's request (a 400 did
                # no work): once more without it. Only if that succeeds was it the cause.
                ctx.attempts.append(
                    {"backend": backend.id, "outcome": "status", "status": failure.status}
                )
                answer = await _send(ctx, backend, call, body_for(backend, ask_usage=False))
                self._refused_stream_options(ctx, backend, failure)
                return answer

        backend, answer = await self.s.router.run(backends, attempt, self._on_attempt(ctx))
        ctx.backend = backend
        if backend.upstream_name(ctx.model) != ctx.model:
            ctx.answer_model = ctx.model
        ctx.status = 200
        ctx.start_answer_digest(self.s.digest_key)
        return answer, applied.get(backend.id)

    async def run_json(self, ctx: RequestContext, parsed: ParsedRequest) -> dict[str, Any]:
        answer, hit = await self._forward(ctx, parsed, self.s.upstream.call_json)
        body = answer.body
        restorer = self._restorer(ctx, hit)
        if restorer is not None and ctx.endpoint != "embeddings":
            t0 = time.perf_counter()
            body = restorer.restore_json(ctx.endpoint, body)
            ctx.answer_scanned(restorer)
            ctx.mark("restore", t0)
        if ctx.answer_model is not None and "model" in body:
            body = {**body, "model": ctx.answer_model}
        ctx.usage = usage_of(body)
        ctx.answer_hmac.update(_encode(body.get("choices") or body.get("data") or []))
        if ctx.capture is not None:
            ctx.capture.append(body)
        return body

    async def run_stream(self, ctx: RequestContext, parsed: ParsedRequest) -> AsyncIterator[bytes]:
        """Open the upstream stream (retries allowed until then) and return the relay."""
        answer, hit = await self._forward(ctx, parsed, self.s.upstream.open_stream)
        return relay_stream(ctx, answer, self._restorer(ctx, hit), self.s.metrics)

    def _restorer(self, ctx: RequestContext, hit: Applied | None) -> Restorer | None:
        """The answer's restorer: the request's own (its placeholders), or, with the guard on and
        nothing to restore, one that only scans the answer for personal data it brings; behind
        the screen for the canary of a system prompt the gateway added, if any."""
        if hit is not None:
            restorer: Restorer | None = hit.restorer
        else:
            redact_new = ctx.decision is not None and ctx.decision.redact_new_pii
            pii = self.s.pii
            restorer = pii.answer_restorer(redact_new) if pii is not None else None
        return Screened(ctx.canary, restorer) if ctx.canary is not None else restorer

    def _refused_stream_options(
        self, ctx: RequestContext, backend: BackendSpec, failure: UpstreamFailure
    ) -> None:
        ctx.attempts[-1]["outcome"] = "stream_options_refused"
        if backend.id not in self.refuses_stream_options:
            self.refuses_stream_options.add(backend.id)
            log.warning(
                "backend %s refused stream_options (status %s): its streams are no longer asked "
                "for usage and are charged their estimate; set stream_usage: false for it",
                backend.id,
                failure.status,
            )

    def _on_attempt(
        self, ctx: RequestContext
    ) -> Callable[[BackendSpec, UpstreamFailure | None], None]:
        def record(backend: BackendSpec, failure: UpstreamFailure | None) -> None:
            attempt: dict[str, Any] = {
                "backend": backend.id,
                "outcome": "ok" if failure is None else failure.kind,
                "status": failure.status if failure else None,
            }
            if failure is not None:
                self.s.metrics.upstream_errors.labels(backend.id, failure.kind).inc()
                if failure.kind not in UNSENT_OUTCOMES and ctx.pii_actions:
                    # what this backend got of the personal data, though it did not answer: the
                    # request reached it (the transfers register counts it there); body_for set
                    # ctx.pii_actions for this backend's body just before the call
                    attempt["pii"] = {e: dict(a) for e, a in ctx.pii_actions.items()}
            ctx.attempts.append(attempt)

        return record


def _action_key(decision: Decision, backend_id: str, counts: dict[str, int]) -> str:
    return "|".join(f"{e}={decision.action_for(backend_id, e).value}" for e in sorted(counts))


def _denial_message(decision: Decision) -> str:
    first = decision.denials[0]
    more = len(decision.denials) - 1
    extra = f" ({more} more reason(s) in error.reasons)" if more > 0 else ""
    return f"Request denied by policy rule {first.rule}: {first.message.rstrip('.')}.{extra}"


async def _send(
    ctx: RequestContext,
    backend: BackendSpec,
    call: Callable[[BackendSpec, str, bytes, str | None], Awaitable[T]],
    body: bytes,
) -> T:
    """One call of ``backend``: its time counted as the upstream's, and, when the request is
    traced, a span of its own named in the ``traceparent`` the backend gets (with the failure's
    kind and status when it failed)."""
    span: dict[str, Any] | None = None
    traceparent: str | None = None
    if ctx.trace is not None:
        span = {"span_id": new_span_id(), "portcullis.backend": backend.id}
        traceparent = ctx.trace.traceparent(span["span_id"])
    t0 = time.perf_counter()
    try:
        return await call(backend, ctx.endpoint, body, traceparent)
    except UpstreamFailure as failure:
        if span is not None:
            span["error.type"] = failure.kind
            span["http.response.status_code"] = failure.status
        raise
    finally:
        now = time.perf_counter()
        ctx.upstream_s += now - t0
        if span is not None and ctx.trace is not None:
            ctx.trace.steps.append(("upstream", t0, now, span))
