"""The console's script parses as the module the page loads (``<script type="module">``): a
module is strict and refuses what a plain script lets by — a function declared twice, say,
which stopped the whole page, sign-in included, and which only the slow tier's browser tests
would otherwise catch. Node.js checks it here (skipped where Node.js is missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "gateway/console/static/console.js"


def test_the_console_script_is_a_valid_module(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    assert 'type="module" src="console.js"' in (SCRIPT.parent / "index.html").read_text()
    module = tmp_path / "console.mjs"  # .mjs: Node.js parses it as a module, as the browser does
    module.write_bytes(SCRIPT.read_bytes())
    done = subprocess.run([node, "--check", str(module)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_check_refuses_what_only_a_module_refuses(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    twice = tmp_path / "twice.mjs"
    twice.write_text("function f() {}\nfunction f() {}\n")
    assert subprocess.run([node, "--check", str(twice)], capture_output=True).returncode != 0
