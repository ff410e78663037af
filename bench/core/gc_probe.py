"""``portcullis`` with a garbage-collection probe, for ``gc_pauses.py``: times every full
(generation 2) collection and writes the list to ``$GC_PROBE_OUT`` every second. With
``GC_PROBE_THAW=1`` the start-up heap is not frozen (:mod:`gateway.heap` made a no-op)."""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from typing import Any

pauses: list[float] = []
_started = [0.0]


def _probe(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        pauses.append((time.perf_counter() - _started[0]) * 1000)


def _writer(path: str) -> None:
    while True:
        time.sleep(1)
        doc = {"pauses_ms": list(pauses), "frozen": gc.get_freeze_count()}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)


gc.callbacks.append(_probe)
threading.Thread(target=_writer, args=(os.environ["GC_PROBE_OUT"],), daemon=True).start()
if os.environ.get("GC_PROBE_THAW"):
    import gateway.http.app  # the serving process freezes there (PII workers are other processes)

    gateway.http.app.freeze_startup_heap = lambda: 0  # type: ignore[attr-defined]

from gateway.cli import main  # noqa: E402

sys.argv = ["portcullis", *sys.argv[1:]]
main()
