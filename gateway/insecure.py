"""Requests let out without a check their policy asked for, because a configuration switch
turns that check off (``pii.enabled: false``, ``pii.ner: false``, ``audit.content_capture:
false``, ``pii.insecure_pass_uninspectable``)."""

from __future__ import annotations

import logging
import math
import time

from gateway.context import RequestContext
from gateway.metrics import Metrics

__all__ = ["InsecurePasses"]

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
