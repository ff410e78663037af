"""The start-up heap, moved out of the cyclic garbage collector's way.

With the PII detector loaded the process holds ~430,000 container objects that live as long as
it does (the spaCy pipeline, the name lexicon, the policy bundle, the catalogue). CPython's full
collections traverse every one of them: about 250 ms each, holding the GIL, every ~5 s under
load — the event loop stood still and p99 latency passed 200 ms at 16 concurrent requests
(docs/benchmarks.md, "Garbage-collection pauses"). :func:`freeze_startup_heap` collects once,
then moves every object alive to the permanent generation (``gc.freeze``), so later
collections see only what the gateway allocates while it serves. Reference counting still
frees frozen objects; only garbage cycles among them would stay for good — a policy reload,
which swaps an engine out, leaves none (none after 60 reloads; ``tests/e2e/test_heap.py``
keeps it so).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> int:
    """Collect, then freeze what is alive; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
