"""Requests let out without a check their policy asked for, because a configuration switch
turns that check off (``pii.enabled: false``, ``pii.ner: false``, ``audit.content_capture:
false``, ``pii.insecure_pass_uninspectable``)."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from gateway.context import RequestContext
from gateway.metrics import Metrics

if TYPE_CHECKING:
    from gateway.config import Settings

__all__ = ["InsecurePasses", "weakening"]

log = logging.getLogger("portcullis.pipeline")


class InsecurePasses:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # Per switch: requests it let out since the last warning about it, and when that
        # warning was logged.
        self._since: dict[str, tuple[int, float]] = {}

    def record(self, ctx: RequestContext, switch: str, why: str) -> None:
        """Recorded in the request's audit record (``pii.insecure``), counted
        (``portcullis_insecure_passes_total``), and logged as a warning with the count at once
        and then at most once a minute per switch (a line per request would drown the log at
        the rates such a setting is chosen for)."""
        ctx.insecure.append(switch)
        self._metrics.insecure_passes.labels(switch).inc()
        count, since = self._since.get(switch, (0, -math.inf))
        now = time.monotonic()
        if now - since >= 60.0:
            log.warning(
                "insecure: %d request(s) sent without a check their policy asked for, because %s",
                count + 1,
                why,
            )
            self._since[switch] = (0, now)
        else:
            self._since[switch] = (count + 1, since)


def weakening(settings: Settings) -> list[dict[str, str]]:
    """The settings in force that weaken what the gateway enforces, each with what it means
    (``GET /admin/config``'s ``weakened``, the console's overview): a compliance officer sees
    at once what is switched off, without reading the file."""
    pii, out = settings.pii, []
    if not pii.enabled:
        out.append(("pii.enabled: false", "prompts are not read for personal data"))
    elif not pii.ner:
        out.append(("pii.ner: false", "names and places are not looked for, only patterns"))
    if pii.enabled and pii.insecure_pass_uninspectable:
        out.append(
            (
                "pii.insecure_pass_uninspectable: true",
                "images, audio, files and token ids pass unread to backends policy keeps "
                "personal data from",
            )
        )
    if settings.limits.shadow:
        out.append(("limits.shadow: true", "the rate limits refuse nothing (shadow mode)"))
    if settings.budgets.shadow:
        out.append(("budgets.shadow: true", "the spend budgets refuse nothing (shadow mode)"))
    return [{"setting": name, "means": means} for name, means in out]
