"""The tiny DeepSeek-V3 checkpoint (made once per session by the real CLI) and a started engine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.torch_engine import TorchEngine

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
PORTCULLIS = str(Path(sys.executable).with_name("portcullis"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-deepseek"
    done = subprocess.run(
        [PORTCULLIS, "runtime", "make-tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def tiny_engine(tiny_model: Path) -> Iterator[TorchEngine]:
    engine = TorchEngine(
        tiny_model, model_name="tiny-deepseek", threads=2, max_batch=8, batch_wait_s=0.05
    )
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.close())
