"""Filler prose for the speed corpus: the kind of sentences chat prompts are made of.

Faker's lorem paragraphs are also used (``lorem``): random capitalised words open every sentence,
the worst case for the capitalisation windows that gate NER. Both are reported.
"""

from __future__ import annotations

import random

__all__ = ["business"]

_SENTENCES = [
    "I need help rewriting the following paragraph so it sounds more professional.",
    "The quarterly report is due next week and the numbers are still being checked.",
    "Please summarise the attached meeting notes in five bullet points.",
    "We are migrating the billing service to a new database and need a rollback plan.",
    "Can you explain why the integration tests fail only on the build server?",
    "The customer said the delivery arrived late and the packaging was damaged.",
    "Our team wants to reduce the time it takes to onboard new engineers.",
    "It would help to have a checklist for the security review before release.",
    "The invoice was sent twice by mistake, so the second one should be cancelled.",
    "This function returns the wrong total when the discount is applied twice.",
    "What is the best way to structure the retry logic for a flaky network call?",
    "If the payment fails, the order should stay pending for at most two days.",
    "The draft contract needs a clause about data retention and deletion.",
    "We noticed that memory usage grows slowly over several hours of traffic.",
    "Please translate the product description into plain, friendly language.",
    "The new hire starts on Monday and needs access to the shared drive.",
    "Our support queue doubled after the last release, mostly password questions.",
    "Could you suggest three subject lines for the renewal reminder email?",
    "There is a gap in the documentation about how refunds are calculated.",
    "The project timeline slipped because the vendor delivered the parts late.",
    "I want to compare two pricing models and understand the risks of each.",
    "After the outage, we agreed to add alerts for disk space and queue depth.",
    "The spreadsheet has duplicate rows that should be merged by account.",
    "Write a polite reply declining the meeting but offering another time.",
    "When the cache is cold, the first request takes almost two seconds.",
]


def business(rng: random.Random, sentences: int = 3) -> str:
    return " ".join(rng.choice(_SENTENCES) for _ in range(sentences))
