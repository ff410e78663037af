"""The self-hosted DeepSeek runtime.

``portcullis runtime serve`` serves a local DeepSeek checkpoint over an OpenAI-compatible API:
vLLM where it is installed and supports the device, otherwise a transformers + torch engine with
a batching queue (``inference.engine``). ``portcullis runtime doctor`` reports the accelerators
found and the engine chosen (``inference.accelerators``, ``inference.selection``); model cards
(``inference.cards``) say what a checkpoint needs and refuse one that cannot fit;
``portcullis runtime make-tiny`` writes a small random DeepSeek-V3 checkpoint (``inference.tiny``);
``inference.catalog.backend_entry`` gives the gateway the runtime's facts.

Importing this package is cheap: nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

__all__: list[str] = []
