"""System prompts the gateway adds to requests when policy asks for them (``system_prompts``).

Policy names them (the decision's ``obligations.system_prompts``, from an overlay); the texts live
here, in the operator's configuration, never in policy or in the audit trail. A prompt is put in
front of the caller's messages as a ``system`` message (in front of a completion's prompt text).
With ``canary`` (the default) it carries a marker made afresh for each request; an answer that
repeats the marker repeats the prompt (OWASP LLM07, system prompt leakage): it is withheld
(``on_leak: block``, the default) or has the marker replaced (``redact``), and the audit record
counts it. See ``docs/configuration.md`` ("System prompts").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.config.base import Strict

__all__ = ["CANARY_SLOT", "PROMPT_ID", "SystemPrompt"]

# Where a prompt's text wants the request's canary; without it the canary opens the text.
CANARY_SLOT = "{canary}"
# A prompt's id: what policy names and the audit trail records.
PROMPT_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class SystemPrompt(Strict):
    text: str = Field(min_length=1, max_length=20_000)
    # A per-request marker in the text, and the answer screened for it.
    canary: bool = True
    # An answer that repeats the canary: "block" withholds the rest of it (finish_reason
    # content_filter); "redact" replaces the canary and lets the rest through.
    on_leak: Literal["block", "redact"] = "block"
