"""Run one export (for the kill-and-resume tests). usage: export_proc.py URL KEY OUT FORMAT PAGE

Prints the process's peak resident memory (``VmHWM``, bytes) when the export is done."""

from __future__ import annotations

import asyncio
import subprocess
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


def start(url: str, key: Path, out: Path, page: int) -> subprocess.Popen[bytes]:
    """This script in a process of its own, exporting JSONL (its stdout piped)."""
    from tests.integration.audit.conftest import PYTHON, REPO, python_env

    return subprocess.Popen(
        [PYTHON, __file__, url, str(key), str(out), "jsonl", str(page)],
        env=python_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
    )


def peak_rss(pid: int | str = "self") -> int:
    """Peak resident memory of one process's address space since its exec (Linux), in bytes:
    unlike ``ru_maxrss``, not raised by the memory of the process that started it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise LookupError("no VmHWM")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
    print(peak_rss(), flush=True)
