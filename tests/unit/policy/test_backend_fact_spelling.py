"""A backend's facts are matched exactly by the rules: their spelling in a configuration file
must not let a backend escape a ban (fail open)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from gateway.config.backends import BackendSpec
from tests.policy_fixtures import BACKENDS, make_input
from tests.policy_fixtures.engines import engine_for


def _hosted(operator: str, family: str) -> BackendSpec:
    return BackendSpec(
        id="deepseek-hosted",
        base_url="https://api.deepseek.com/v1",
        models=("deepseek-chat",),
        operator=operator,
        model_family=family,
        model_origin="CN",
        hosting_country="CN",
    )


@pytest.mark.parametrize(
    ("operator", "family"),
    [("DeepSeek", "DeepSeek"), ("deepseek ", " DEEPSEEK"), ("deepseek", "deepseek")],
)
def test_australian_public_servants_are_denied_deepseek_however_it_is_spelt(
    operator: str, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: operator "DeepSeek" in the configuration made the Australian ban not apply.
    backend = _hosted(operator, family)
    assert (backend.operator, backend.model_family) == ("deepseek", "deepseek")
    monkeypatch.setitem(BACKENDS, "deepseek-hosted", backend)
    policy_input = make_input("AU", "government", backends=("deepseek-hosted",))
    decision = engine_for(()).evaluate_sync(json.dumps(json.loads(json.dumps(policy_input))))
    assert decision["allow"] is False


@pytest.mark.parametrize("operator", ["Deep Seek", "deepseek/eu", "", "x" * 64])
def test_operator_that_is_not_an_identifier_is_refused(operator: str) -> None:
    with pytest.raises(ValidationError, match="lowercase identifier"):
        _hosted(operator, "deepseek")
