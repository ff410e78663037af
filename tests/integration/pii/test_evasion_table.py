# ruff: noqa: RUF001 - look-alike and non-Latin characters on purpose
"""Reliability P-1 and P-2 as the row asks: one fixture table, entity by transform, through the
running gateway with the real guard; the fake upstream's record is the evidence.

Each value of the reference's measurement (its §2.3; the IPv4 address a public one) is hidden
by each transform in "My number is … thanks", sent as a
chat message under a policy that pseudonymises every type. The upstream must receive the
entity's placeholder and neither the value as sent nor its plain form; the caller gets the value
back as written. Adding a value or a transform adds its cases."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.pii.test_gateway_pii import start_pseudonymising
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.reference_values import REFERENCE_VALUES
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.integration

VALUES = REFERENCE_VALUES

_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@.+-"}  # fmt: skip
_CYRILLIC = {"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "x": "х",
             "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О",
             "P": "Р", "T": "Т", "X": "Х"}  # fmt: skip


def _middle(v: str, mark: str) -> str:
    return v[: len(v) // 2] + mark + v[len(v) // 2 :]


# transform name -> how the value is written in the message text
TRANSFORMS: dict[str, Callable[[str], str]] = {
    # P-1: Unicode obfuscation
    "zero-width-every-character": lambda v: "\u200b".join(v),
    "one-zero-width": lambda v: _middle(v, "\u200b"),
    "one-soft-hyphen": lambda v: _middle(v, "\u00ad"),
    "full-width": lambda v: "".join(_FULLWIDTH.get(c, c) for c in v),
    "arabic-indic-digits": lambda v: "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in v),
    "cyrillic-homoglyphs": lambda v: "".join(_CYRILLIC.get(c, c) for c in v),
    # P-2: encoded forms (the JSON ``\u`` escapes are in the request's bytes: see _body)
    "base64": lambda v: base64.b64encode(v.encode()).decode(),
    "url-encoded": lambda v: urllib.parse.quote(v, safe=""),
    "json-u-escapes": lambda v: v,
    "spaced": lambda v: " ".join(v.replace(" ", "")),
    "dotted": lambda v: ".".join(v.replace(" ", "")),
}


def _body(text: str, escape: str | None) -> bytes:
    """The request as sent: with ``escape``, each of its characters in ``text`` written as a
    JSON ``\\uXXXX`` escape (the gateway reads the JSON before it looks)."""
    raw = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": text}]})
    if escape is not None:
        raw = raw.replace(escape, "".join(f"\\u{ord(c):04x}" for c in escape))
    return raw.encode()


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, FakeDecider, str]]:
    running, decider, key = start_pseudonymising(
        tmp_path_factory.mktemp("gw-evasion"), upstream_server
    )
    yield running, decider, key
    running.stop()


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("entity", sorted(VALUES))
def test_a_hidden_value_reaches_the_upstream_only_as_its_placeholder(
    gw: tuple[RunningGateway, FakeDecider, str],
    upstream: FakeUpstream,
    entity: str,
    transform: str,
) -> None:
    running, _, key = gw
    value = VALUES[entity]
    written = TRANSFORMS[transform](value)
    text = f"My number is {written} thanks"
    upstream.mode = "echo"
    status, _, answer = running.request(
        "POST",
        "/v1/chat/completions",
        raw=_body(text, written if transform == "json-u-escapes" else None),
        token=key,
    )
    assert status == 200, answer
    sent: Any = upstream.received[-1]["json"]["messages"][0]["content"]
    assert re.search(rf"<{entity}_[0-9a-f]+>", sent), sent
    plain = re.sub(r"[ .\-]", "", value)
    assert written not in sent and value not in sent and plain not in sent, sent
    # what the caller wrote comes back as written
    assert json.loads(answer["choices"][0]["message"]["content"]) == text
