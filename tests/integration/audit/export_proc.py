"""Run one export (for the kill-and-resume test). usage: export_proc.py URL KEY OUT FORMAT PAGE"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from audit.checkpoint import Signer
from audit.db import open_engine
from audit.export import ExportFilter, Scope, export


async def main(url: str, key: str, out: str, fmt: str, page: int) -> None:
    engine = open_engine(url)
    await export(
        engine,
        Signer.from_file(Path(key)),
        Path(out),
        fmt,
        ExportFilter(),
        Scope("tester", frozenset({"auditor"})),
        page=page,
    )
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
