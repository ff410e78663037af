"""The sliding minute against the token bucket: one reservation and its reconciliation, in memory
and in Redis, side by side in one run (alternating rounds; ratios, not absolute times).

    python bench/limits/window.py [--redis redis://127.0.0.1:6379/0] [--rounds 3]

Keys at 600 requests and 200,000 tokens a minute (the defaults), taken in turn, each reservation
settled at once as an answer would settle it; each key's sliding minute holds ~100 entries by the
end of a round (1,000 keys in memory, 50 in Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from gateway.limiter import Limiter, MemoryLimiter
from gateway.redis_limiter import RedisLimiter


async def per_reservation(lim: Limiter, n: int, keys: int, tag: str) -> float:
    """Microseconds per reservation and its reconciliation, ``n`` of them over ``keys`` keys."""
    t0 = time.perf_counter()
    for i in range(n):
        r = await lim.reserve(f"bench:{tag}:{i % keys}", 100)
        await lim.reconcile(r, 40)
    return (time.perf_counter() - t0) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for name, make, n, keys in (
        ("memory", lambda w: MemoryLimiter(600, 200_000, window=w), 100_000, 1000),
        ("redis", lambda w: RedisLimiter(a.redis, 600, 200_000, 1.0, window=w), 5_000, 50),
    ):
        for rnd in range(a.rounds):
            us = {}
            for window in (False, True):
                lim = make(window)
                try:
                    tag = f"{name}{rnd}{'w' if window else 'b'}{time.time_ns()}"
                    await per_reservation(lim, n // 10, keys, tag)  # warm
                    us[window] = await per_reservation(lim, n, keys, tag)
                finally:
                    await lim.close()
            print(
                f"{name:6} round {rnd + 1}: bucket {us[False]:7.1f} µs, sliding {us[True]:7.1f} µs"
                f" per reservation and reconciliation; sliding / bucket {us[True] / us[False]:.2f}"
            )


if __name__ == "__main__":
    asyncio.run(main())
