"""The transformers + torch engine: one worker thread, a batching queue.

Requests wait in a queue; the worker takes up to ``max_batch`` of them, left-pads the prompts,
runs one prefill for the batch and then decodes step by step with a shared KV cache. Each step
emits one token per live row to that request's asyncio queue (thread-safe hand-off). A row leaves
the batch when it hits EOS, its ``max_tokens``, or is cancelled (its consumer closed the stream:
the client went away); the cache rows are dropped with it, so a cancelled request costs nothing
from the next step on. Requests that arrive while a batch decodes join it at the next step
(continuous batching): they are prefilled on their own, the shorter KV cache is left-padded and
masked, and the rows are stacked. Limits are listed in docs/runtime.md.

torch and transformers are imported when the engine starts, never at module import.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.engine import Delta, EngineError, EngineStats, Message, SamplingParams

__all__ = ["TorchEngine"]

log = logging.getLogger("portcullis.runtime.torch")

_STOP = object()


@dataclass(eq=False)
class _Job:
    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[Delta | EngineError]
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    text: str = ""
    generator: Any = None

    def emit(self, item: Delta | EngineError) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)


class TorchEngine:
    def __init__(
        self,
        model_dir: Path,
        *,
        model_name: str,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch: int = 8,
        batch_wait_s: float = 0.005,
        threads: int | None = None,
        max_model_len: int | None = None,
        max_waiting: int = 256,
        load_format: str = "auto",
    ) -> None:
        self.model_dir = model_dir
        self.model_name = model_name
        self.device = device
        self.dtype = dtype
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.threads = threads
        self.max_model_len = max_model_len or 0
        self.max_waiting = max_waiting
        if load_format not in ("auto", "dummy"):
            raise EngineError(f"unsupported load format {load_format!r}")
        self.load_format = load_format
        self.stats = EngineStats()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._model: Any = None
        self._tok: Any = None
        self._eos: int = 1
        self._pad: int = 1
        # transformers renamed the forward's ``past_key_values`` to ``cache`` (5.2x); both work.
        self._cache_kw = "cache"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self._thread = threading.Thread(target=self._run, name="torch-engine", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        torch_dtype = _torch_dtype(torch, self.dtype, self.device)
        try:
            tok = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            if self.load_format == "dummy":
                model: Any = _random_model(torch, self.model_dir, torch_dtype, self.device)
            else:
                model = AutoModelForCausalLM.from_pretrained(
                    self.model_dir, local_files_only=True, dtype=torch_dtype
                )
        except (OSError, ValueError) as exc:
            raise EngineError(f"cannot load the checkpoint: {type(exc).__name__}") from exc
        model.to(self.device)
        model.eval()
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._model, self._tok = model, tok
        eos = tok.eos_token_id if tok.eos_token_id is not None else model.config.eos_token_id
        self._eos = int(eos[0] if isinstance(eos, list) else eos)
        self._pad = int(tok.pad_token_id if tok.pad_token_id is not None else self._eos)
        if not self.max_model_len:
            self.max_model_len = int(getattr(model.config, "max_position_embeddings", 4096))

    # -- prompts ---------------------------------------------------------------------------

    def chat_prompt(self, messages: Sequence[Message]) -> list[int]:
        rendered = self._tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            tokenize=False,
        )
        # The template writes the BOS itself.
        return list(self._tok.encode(rendered, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    # -- generation ------------------------------------------------------------------------

    def overloaded(self) -> bool:
        return self._queue.qsize() >= self.max_waiting

    async def generate(self, prompt: list[int], params: SamplingParams) -> AsyncIterator[Delta]:
        if self._thread is None:
            raise EngineError("engine not started")
        job = _Job(prompt, params, asyncio.get_running_loop(), asyncio.Queue())
        self.stats.requests += 1
        self._queue.put(job)
        finished = False
        try:
            while True:
                item = await job.out.get()
                if isinstance(item, EngineError):
                    raise item
                if item.finish_reason is not None:
                    finished = True
                yield item
                if finished:
                    return
        finally:
            if not finished:
                job.cancelled.set()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]
            deadline = time.monotonic() + self.batch_wait_s
            while len(batch) < self.max_batch:
                timeout = deadline - time.monotonic()
                try:
                    nxt = (
                        self._queue.get(timeout=max(timeout, 0))
                        if timeout > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(nxt)
            batch = [j for j in batch if not self._drop_if_cancelled(j)]
            if not batch:
                continue
            try:
                self._run_batch(batch)
            except Exception as exc:  # noqa: BLE001 - the worker's boundary: fail these jobs
                log.error("torch engine batch failed: %s", type(exc).__name__)
                for job in batch:
                    job.emit(EngineError("generation failed"))

    def _drop_if_cancelled(self, job: _Job) -> bool:
        if job.cancelled.is_set():
            self.stats.cancelled += 1
            self.stats.cancelled_tokens.append(0)
            return True
        return False

    def _prefill(self, jobs: list[_Job]) -> tuple[Any, Any, Any, Any]:
        """One forward over the left-padded prompts: (mask, last positions, cache, logits)."""
        import torch

        self.stats.batches += 1
        width = max(len(j.prompt) for j in jobs)
        ids = torch.full((len(jobs), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, job in enumerate(jobs):
            ids[row, width - len(job.prompt) :] = torch.tensor(job.prompt, dtype=torch.long)
            mask[row, width - len(job.prompt) :] = 1
            if job.params.seed is not None:
                job.generator = torch.Generator(device=self.device).manual_seed(job.params.seed)
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        return mask, pos[:, -1:], self._cache_of(out), out.logits[:, -1, :].float()

    def _cache_of(self, out: Any) -> Any:
        return getattr(out, self._cache_kw)

    def _waiting(self, room: int) -> list[_Job]:
        """Requests queued since the batch started, taken without waiting (continuous batching)."""
        jobs: list[_Job] = []
        while len(jobs) < room:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)
                break
            if not self._drop_if_cancelled(job):
                jobs.append(job)
        return jobs

    def _run_batch(self, batch: list[_Job]) -> None:
        import torch

        live = list(batch)
        with torch.inference_mode():
            mask, pos, cache, logits = self._prefill(live)
            mergeable = _mergeable(cache)
            while True:
                self.stats.max_batch = max(self.stats.max_batch, len(live))
                self.stats.active = len(live)
                keep: list[int] = []
                nxt: list[int] = []
                # greedy rows' tokens in one transfer: one device sync per step, not one per row
                greedy = logits.argmax(dim=-1).tolist()
                for row, job in enumerate(live):
                    if job.cancelled.is_set():
                        self.stats.cancelled += 1
                        self.stats.cancelled_tokens.append(len(job.ids))
                        continue
                    token = (
                        int(greedy[row])
                        if job.params.temperature <= 0
                        else _pick(torch, logits[row], job.params, job.generator)
                    )
                    job.ids.append(token)
                    self.stats.tokens += 1
                    reason = None
                    if token == self._eos and not job.params.ignore_eos:
                        reason = "stop"
                    elif len(job.ids) >= job.params.max_tokens:
                        reason = "length"
                    job.emit(
                        Delta(self._delta_text(job, final=reason is not None), len(job.ids), reason)
                    )
                    if reason is not None:
                        self.stats.finished += 1
                        continue
                    keep.append(row)
                    nxt.append(token)
                if not keep:
                    break
                if len(keep) < len(live):
                    index = torch.tensor(keep, device=mask.device)
                    cache.batch_select_indices(index)
                    mask, pos = mask[index], pos[index]
                    live = [live[r] for r in keep]
                step = torch.tensor(nxt, dtype=torch.long, device=mask.device).unsqueeze(1)
                mask = torch.cat([mask, torch.ones_like(step)], dim=1)
                pos = pos + 1
                out = self._model(
                    input_ids=step,
                    attention_mask=mask,
                    position_ids=pos,
                    use_cache=True,
                    **{self._cache_kw: cache},
                )
                cache = self._cache_of(out)
                logits = out.logits[:, -1, :].float()
                joining = self._waiting(self.max_batch - len(live)) if mergeable else []
                if joining:
                    self.stats.joined += len(joining)
                    extra = self._prefill(joining)
                    mask, pos, cache, logits = _merge(torch, (mask, pos, cache, logits), extra)
                    live += joining
        self.stats.active = 0

    def _delta_text(self, job: _Job, *, final: bool) -> str:
        """New text since the last emit; a partial UTF-8 character waits for its next token."""
        ids = job.ids[:-1] if (final and job.ids and job.ids[-1] == self._eos) else job.ids
        text = self._tok.decode(ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return ""
        delta = text[len(job.text) :] if text.startswith(job.text) else ""
        job.text = text
        return delta


def _mergeable(cache: Any) -> bool:
    """Only plain dynamic caches (one keys/values tensor per layer) are padded and joined."""
    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def _merge(
    torch: Any, a: tuple[Any, Any, Any, Any], b: tuple[Any, Any, Any, Any]
) -> tuple[Any, Any, Any, Any]:
    """Join two decoding batches: left-pad the shorter (masked out) and stack the rows."""
    (mask_a, pos_a, cache_a, logits_a), (mask_b, pos_b, cache_b, logits_b) = a, b
    width = max(mask_a.shape[1], mask_b.shape[1])

    def pad(mask: Any, cache: Any) -> Any:
        short = width - mask.shape[1]
        if short:
            for layer in cache.layers:
                layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, short, 0))
                layer.values = torch.nn.functional.pad(layer.values, (0, 0, short, 0))
            mask = torch.nn.functional.pad(mask, (short, 0))
        return mask

    mask_a, mask_b = pad(mask_a, cache_a), pad(mask_b, cache_b)
    for la, lb in zip(cache_a.layers, cache_b.layers, strict=True):
        la.keys = torch.cat([la.keys, lb.keys], dim=0)
        la.values = torch.cat([la.values, lb.values], dim=0)
    return (
        torch.cat([mask_a, mask_b], dim=0),
        torch.cat([pos_a, pos_b], dim=0),
        cache_a,
        torch.cat([logits_a, logits_b], dim=0),
    )


def _pick(torch: Any, logits: Any, params: SamplingParams, generator: Any) -> int:
    if params.temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        cut = sorted_p.cumsum(-1) - sorted_p > params.top_p
        sorted_p[cut] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=generator).item())


def _random_model(torch: Any, model_dir: Path, dtype: Any, device: str) -> Any:
    """The configuration's model with random weights, made on ``device`` (vLLM's
    ``--load-format dummy``): for benchmarks and rehearsals where no checkpoint file exists.
    The answers are nonsense; the shapes, the memory and the arithmetic are the real model's."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    torch.manual_seed(0)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype)  # type: ignore[no-untyped-call]


def _torch_dtype(torch: Any, dtype: str, device: str) -> Any:
    if dtype == "auto":
        # bf16 matmuls are slow on many CPUs; accelerators run the checkpoint's bf16.
        return torch.float32 if device == "cpu" else torch.bfloat16
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
            dtype
        ]
    except KeyError:
        raise EngineError(f"unsupported dtype {dtype!r}") from None
