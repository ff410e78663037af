"""A writer process for the crash and two-writer tests (run as a script).

usage: writer_proc.py URL N PREFIX [--complete]
Writes N intents (and completions with --complete) through a real sink, printing
``forwarded <request id>`` after each intent is durable, the way the gateway forwards only then.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from audit.checkpoint import Signer
from audit.db import open_engine
from audit.sink import DatabaseAuditSink
from tests.integration.audit.conftest import event


async def main(url: str, n: int, prefix: str, complete: bool, key: Path) -> None:
    sink = DatabaseAuditSink(
        open_engine(url), Signer.from_file(key), None, deadline_s=10.0, checkpoint_interval_s=3600
    )
    await sink.start()

    async def one(i: int) -> None:
        ev = event(i, request_id=f"{prefix}-{i:06d}", ts=None)  # stamped now
        await sink.intent(ev)
        print(f"forwarded {ev['request_id']}", flush=True)
        if complete:
            await sink.complete(ev)

    for start in range(0, n, 50):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 50))))
    await sink.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1], int(sys.argv[2]), sys.argv[3], "--complete" in sys.argv, Path(sys.argv[4])
        )
    )
