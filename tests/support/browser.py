"""A console page in the real headless Chromium that notes every script error and every error
the page logs, so that a test can fail on them (the browser tests' shared start)."""

from __future__ import annotations

from typing import Any

__all__ = ["watched_page"]


def watched_page(browser: Any, problems: list[str], **options: Any) -> Any:
    """A new page of ``browser`` (``options`` as ``new_page`` takes them) whose script errors
    and console errors are appended to ``problems``."""
    page = browser.new_page(**options)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    return page
