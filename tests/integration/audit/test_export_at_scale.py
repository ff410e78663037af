"""Reliability E-3 at the row's scale (slow tier): an export of 100,000 entries, killed with
SIGKILL part-way, resumes from its cursor with no gap and no duplicate, verifies against its
signed manifest, and neither run nor the offline verification holds the file in memory (each
one's peak resident memory stays far below what it wrote or read)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from audit.checkpoint import Signer
from audit.sink import DatabaseAuditSink
from tests.integration.audit.conftest import PYTHON, python_env
from tests.integration.audit.export_proc import peak_rss, start
from tests.integration.audit.test_export import _fill

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[3]
REQUESTS = 50_000  # an intent and an outcome each: 100,000 entries


def _verify_peak(out: Path, key_file: Path) -> tuple[bool, int]:
    """Verify the export offline in a process of its own: whether it verified, and the process's
    peak resident memory."""
    code = (
        "import sys; from pathlib import Path\n"
        "from audit.checkpoint import Signer\n"
        "from audit.offline import verify_export\n"
        "from tests.integration.audit.export_proc import peak_rss, start\n"
        "out = Path(sys.argv[1])\n"
        "r = verify_export(out, out.with_name(out.name + '.manifest.json'),"
        " Signer.from_file(Path(sys.argv[2])).public)\n"
        "print(r.ok, r.entries, peak_rss())\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code, str(out), str(key_file)],
        env=python_env(),
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=600,
    )
    ok, _, peak = done.stdout.decode().split()
    return ok == "True", int(peak)


def _seqs(path: Path) -> list[int]:
    with path.open("rb") as fh:
        return [json.loads(line)["seq"] for line in fh]


async def test_a_100k_entry_export_killed_part_way_resumes_whole_in_bounded_memory(
    engine: AsyncEngine,
    database_url: str,
    signer: Signer,
    cp_dir: Path,
    key_file: Path,
    tmp_path: Path,
) -> None:
    # its own sink: a thousand intents at once on a busy machine may take longer than the
    # fixture's 5 s deadline, and that is not what is tested here
    sink = DatabaseAuditSink(
        engine, signer, cp_dir, deadline_s=60, checkpoint_interval_s=3600, owns_engine=False
    )
    await sink.start()
    try:
        for _ in range(REQUESTS // 1000):
            await _fill(sink, 1000)
    finally:
        await sink.close()
    out = tmp_path / "all.jsonl"
    cursor = tmp_path / "all.jsonl.cursor"

    first = start(database_url, key_file, out, page=2000)  # the command line's page
    deadline = time.monotonic() + 600
    first_peak = 0
    while time.monotonic() < deadline and first.poll() is None:
        if cursor.exists() and json.loads(cursor.read_text())["after_seq"] >= 30_000:
            first_peak = peak_rss(first.pid)
            break
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL, "the export finished before it could be killed"
    written_first = out.stat().st_size

    second = start(database_url, key_file, out, page=2000)  # the command line's page
    stdout, _ = await asyncio.to_thread(second.communicate)
    assert second.returncode == 0
    second_peak = int(stdout.split()[-1])

    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    until = manifest["until_seq"]
    assert until >= 2 * REQUESTS
    assert _seqs(out) == list(range(1, until + 1))  # every entry once, in order, none torn
    verified, verify_peak = await asyncio.to_thread(_verify_peak, out, key_file)
    assert verified
    size = out.stat().st_size
    written_second = size - written_first
    # A page of 2,000 entries is ~4 MB of output; a process (Python, SQLAlchemy, the driver) is
    # ~70 MB before it reads a row. The killed run wrote ~65 MB, the resumed one ~150 MB, the
    # verification read all ~215 MB: memory that grew with the file would differ by as much.
    assert size > 150 * 2**20 and written_second > written_first + 50 * 2**20, (
        written_first,
        written_second,
    )
    assert max(first_peak, second_peak, verify_peak) < 100 * 2**20, (
        first_peak,
        second_peak,
        verify_peak,
    )
    assert abs(second_peak - first_peak) < 32 * 2**20, (first_peak, second_peak)
