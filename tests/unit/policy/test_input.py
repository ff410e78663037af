"""build_policy_input: the decision contract's input, never any text or PII value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.config.policy import PolicySettings
from gateway.policy.input import build_policy_input, rfc3339
from gateway.principal import Principal
from tests.policy_fixtures import BACKENDS


def _build(**over: object) -> dict[str, object]:
    args: dict[str, object] = {
        "principal": Principal(
            key_id="k1", user="u", jurisdiction="AU-NSW", sector="government", team="t"
        ),
        "endpoint": "chat",
        "model": "deepseek-chat",
        "stream": True,
        "tools": False,
        "backends": [BACKENDS["deepseek-self"], BACKENDS["openai"]],
        "pii_counts": None,
        "now": datetime(2025, 2, 4, 1, 2, 3, tzinfo=UTC),
        "settings": PolicySettings(),
    }
    args.update(over)
    return build_policy_input(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counts", "phase", "pii"),
    [
        (None, "route", None),
        ({}, "final", {"entities": {}}),
        ({"PERSON": 2, "KR_RRN": 1}, "final", {"entities": {"PERSON": 2, "KR_RRN": 1}}),
    ],
)
def test_phase_follows_whether_pii_was_counted(counts: object, phase: str, pii: object) -> None:
    inp = _build(pii_counts=counts)
    assert inp["phase"] == phase and inp["pii"] == pii


@pytest.mark.parametrize(
    ("when", "text"),
    [
        (datetime(2025, 2, 4, 1, 2, 3, tzinfo=UTC), "2025-02-04T01:02:03Z"),
        (
            datetime(2025, 2, 4, 9, 0, 0, tzinfo=timezone(timedelta(hours=10))),
            "2025-02-03T23:00:00Z",
        ),
    ],
)
def test_now_is_rfc3339_utc_with_z(when: datetime, text: str) -> None:
    assert rfc3339(when) == text
    assert _build(now=when)["now"] == text


def test_principal_backends_and_stance_are_carried() -> None:
    inp = _build(settings=PolicySettings(self_hosted_stance="permit"))
    principal = inp["principal"]
    assert isinstance(principal, dict)
    assert (principal["country"], principal["subdivision"], principal["sector"]) == (
        "AU",
        "AU-NSW",
        "government",
    )
    assert inp["deployment"] == {"self_hosted_stance": "permit"}
    backends = inp["backends"]
    assert isinstance(backends, list)
    assert [b["id"] for b in backends] == ["deepseek-self", "openai"]
    assert backends[0]["self_hosted"] is True and backends[0]["operator"] == "self"
    assert inp["request"] == {
        "endpoint": "chat",
        "api": "chat",  # the endpoint when the caller used it directly
        "model": "deepseek-chat",
        "stream": True,
        "tools": False,
        "marking": None,  # no classification marking in the request
    }
    assert _build(marking="protected")["request"]["marking"] == "protected"
    # a Responses request is served as chat: the policy can tell the two apart
    assert _build(api="responses")["request"]["api"] == "responses"
