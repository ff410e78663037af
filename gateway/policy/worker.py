"""The embedded engine in a contained worker process (``policy.isolation: process``).

regorus holds the GIL while it evaluates, so in-thread mode cannot cut a runaway evaluation
short. Here the engine runs in a child process speaking JSON lines over stdin/stdout; a missed
deadline or a dead child kills it and starts a fresh one, and the requests caught in it fail
closed meanwhile. The child is ``python -m gateway.policy.worker``::

    parent -> child   {"bundle": "/path" | null, "overlays": [...]}     (first line)
    child  -> parent  {"ready": true, "revision": "sha256:..."}
    parent -> child   {"id": 7, "input": {...}}
    child  -> parent  {"id": 7, "result": {...}}  |  {"id": 7, "error": "RuntimeError"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.policy.cachekey import FULL, KeyPlan

__all__ = ["ProcessEngine", "main"]

_LIMIT = 16 * 1024 * 1024  # longest line either side accepts


class ProcessEngine:
    """:class:`gateway.policy.contract.PolicyEngine` evaluating in a restartable child process."""

    def __init__(
        self,
        revision: str,
        bundle_dir: Path | None,
        overlays: Sequence[Path] = (),
        key_plan: KeyPlan = FULL,
    ) -> None:
        self._revision = revision
        self.key_plan = key_plan  # what the decision cache keys on
        self._spec = {
            "bundle": str(bundle_dir) if bundle_dir else None,
            "overlays": [str(p) for p in overlays],
        }
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._restart: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def revision(self) -> str:
        return self._revision

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> None:
        async with self._lock:
            await self._ensure()

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        if self._closed:
            raise RuntimeError("policy worker closed")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.policy.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=_LIMIT,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(self._spec).encode() + b"\n")
        await proc.stdin.drain()
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            hello = json.loads(line)
        except Exception:  # noqa: BLE001 (fail closed)
            proc.kill()
            raise RuntimeError("policy worker did not start") from None
        if not hello.get("ready") or hello.get("revision") != self._revision:
            proc.kill()
            raise RuntimeError("policy worker loaded a different bundle revision")
        self._proc = proc
        self._reader = asyncio.get_running_loop().create_task(self._read(proc))
        return proc

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                fut = self._pending.pop(msg.get("id"), None)
                if fut is None or fut.done():
                    continue
                if "result" in msg:
                    fut.set_result(msg["result"])
                else:
                    fut.set_exception(RuntimeError(f"policy worker: {msg.get('error', 'error')}"))
        except Exception:  # noqa: BLE001, S110 (fail closed)
            pass
        finally:
            self._fail_pending(proc, "policy worker exited")
            if self._proc is proc and not self._closed:
                self._kill()

    def _fail_pending(self, proc: asyncio.subprocess.Process, why: str) -> None:
        if self._proc is proc:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(RuntimeError(why))
            self._pending.clear()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            self.restarts += 1
        if proc is not None:
            self._fail_pending(proc, "policy worker killed")
        self._proc = None
        if not self._closed:  # start the replacement now, not on the next live request
            self._restart = asyncio.get_running_loop().create_task(self._background_start())

    async def _background_start(self) -> None:
        with contextlib.suppress(Exception):
            await self.start()

    async def evaluate(self, policy_input: Mapping[str, Any]) -> Mapping[str, Any]:
        async with self._lock:
            proc = await self._ensure()
        assert proc.stdin is not None
        self._next += 1
        rid = self._next
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            proc.stdin.write(json.dumps({"id": rid, "input": policy_input}).encode() + b"\n")
            await proc.stdin.drain()
            result = await fut
        except asyncio.CancelledError:
            # The caller's deadline passed: the child may be stuck in a runaway evaluation.
            # (Cancelling the await cancels ``fut`` too, so "no answer" is cancelled-or-pending.)
            if fut.cancelled() or not fut.done():
                self._kill()
            raise
        except (BrokenPipeError, ConnectionResetError):
            self._kill()
            raise RuntimeError("policy worker pipe closed") from None
        finally:
            self._pending.pop(rid, None)
        if not isinstance(result, Mapping):
            raise ValueError("policy worker returned no decision document")
        return result

    async def ready(self) -> bool:
        try:
            await self.start()
            return True
        except Exception:  # noqa: BLE001 (fail closed)
            return False

    async def close(self) -> None:
        self._closed = True
        self._kill()
        if self._restart is not None:
            self._restart.cancel()
            with contextlib.suppress(BaseException):
                await self._restart
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader


def main() -> None:
    from gateway.policy.bundle import load_bundle
    from gateway.policy.embedded import EmbeddedEngine

    spec = json.loads(sys.stdin.readline())
    bundle = load_bundle(
        Path(spec["bundle"]) if spec.get("bundle") else None,
        tuple(Path(p) for p in spec.get("overlays", [])),
    )
    # The worker evaluates in its main thread (evaluate_sync): no pool threads. That thread's
    # engine parses the bundle on first use, so use it once before saying ready; otherwise the
    # first live request after every (re)start paid the parse, which on a slow machine outran
    # the deadline and had the fresh worker killed again.
    engine = EmbeddedEngine(bundle, threads=0, warm=False)
    with contextlib.suppress(Exception):  # the engine is built before evaluating; that is the point
        engine.evaluate_sync("{}")
    out = sys.stdout
    out.write(json.dumps({"ready": True, "revision": bundle.revision}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        try:
            result = engine.evaluate_sync(json.dumps(msg["input"]))
            reply = {"id": msg.get("id"), "result": result}
        except BaseException as exc:  # a panic included; the parent fails the request closed  # noqa: BLE001 (fail closed)
            reply = {"id": msg.get("id"), "error": type(exc).__name__}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
