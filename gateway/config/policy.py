"""Settings of the policy engine (owned by the policy component). Every default works alone."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["PolicySettings"]


class PolicySettings(Strict):
    engine: Literal["embedded", "opa"] = "embedded"
    bundle: Path | None = None  # default: the shipped policies/ directory
    overlays: tuple[Path, ...] = ()  # the organisation's own rules and data
    deadline_ms: int = Field(250, ge=1, le=250)
    self_hosted_stance: Literal["cautious", "permit"] = "cautious"
    opa_url: str = "http://127.0.0.1:8181"
    # The decision the OPA sidecar is asked for: POST /v1/data/<opa_path>.
    opa_path: str = Field("portcullis/decision", pattern=r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
    # At most this many evaluations run at once; a request that cannot start one within the
    # deadline fails closed (policy_unavailable), and so does one that waited for a slot and has
    # less time left than the engine typically takes (shed; docs/policy.md).
    max_in_flight: int = Field(32, ge=1, le=4096)
    threads: int = Field(2, ge=1, le=64)  # embedded engine worker threads
    # thread: evaluate in this process's thread pool (fast; regorus is memory-safe, a panic is an
    # exception). process: evaluate in a child process that is killed and restarted on a missed
    # deadline or a crash (contains a runaway overlay; costs an IPC hop on a cache miss).
    isolation: Literal["thread", "process"] = "thread"
    # Decisions cached by (decision-relevant input, UTC day, bundle revision); 0 disables.
    cache_size: int = Field(4096, ge=0, le=1_000_000)
    # Reload the bundle when its files change (polls mtimes); SIGHUP and the admin call always work.
    watch: bool = False
    watch_interval_s: float = Field(2.0, gt=0, le=3600)
