"""Personal data an answer brings, redacted where policy obliges it (reliability P-5 by policy):
the real gateway with the embedded policy engine and the example overlay ``redact_new_answers``
(government staff), the real PII guard at its default ``pii.output_new_pii: report``, the real
audit sink on SQLite, the official SDK, and the fake upstream as the model answering with an
e-mail address the prompt never held, whole or in pieces across stream deltas."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.conftest import overlay_gateway
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
PIECES = ["Write to jo", "hn.smith@", "exam", "ple.com, please. ", "It is about the invoice."]
ANSWER = "".join(PIECES)
REDACTED = "Write to [EMAIL_ADDRESS], please. It is about the invoice."


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[tuple[RunningGateway, Path]]:
    tmp = tmp_path_factory.mktemp("redact-new")
    gw = overlay_gateway(tmp, upstream_server, "redact_new_answers", pii={"ner": False})
    yield gw, tmp
    gw.stop()


def _streamed(sdk: openai.OpenAI) -> list[str]:
    stream = sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    return [c.choices[0].delta.content or "" for c in stream if c.choices]


def test_government_staff_get_new_personal_data_redacted_and_others_get_it_counted(
    world: tuple[RunningGateway, Path], upstream: FakeUpstream
) -> None:
    gw, tmp = world
    gov = gw.create_key(user="official", jurisdiction="GB", sector="government")
    private = gw.create_key(user="dev", jurisdiction="GB", sector="private")

    def sdk(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)

    upstream.reply = ANSWER
    upstream.stream_chunks = PIECES
    # government: redacted, whole and streamed; no delta holds a piece of the address
    whole = sdk(gov).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello"}]
    )
    assert whole.choices[0].message.content == REDACTED
    deltas = _streamed(sdk(gov))
    for fragment in ("john", "smith@", "example", ".com"):
        assert not any(fragment in d for d in deltas), (fragment, deltas)
    assert "".join(deltas) == REDACTED
    # the private sector: no obligation, the default setting counts and passes it on
    whole = sdk(private).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello"}]
    )
    assert whole.choices[0].message.content == ANSWER
    assert "".join(_streamed(sdk(private))) == ANSWER

    records: list[dict[str, Any]] = settled_entries(tmp, "complete")[-4:]
    assert [r["decision"]["obligations"]["redact_new_pii"] for r in records] == [
        True,
        True,
        False,
        False,
    ]
    assert all(r["pii"]["output"] == {"EMAIL_ADDRESS": 1} for r in records), records
