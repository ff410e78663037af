"""The JSON Schemas in policies/schema describe what the gateway sends and the pack answers."""

from __future__ import annotations

import json

import jsonschema
import pytest

from gateway.policy.bundle import default_bundle_dir
from tests.policy_fixtures.engines import evaluate, input_for
from tests.policy_fixtures.scenarios import SCENARIOS

SCHEMA_DIR = default_bundle_dir() / "schema"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


INPUT = _validator("decision-input.v1.json")
OUTPUT = _validator("decision-output.v1.json")


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_inputs_and_decisions_match_the_schemas(s: object) -> None:
    INPUT.validate(input_for(s))  # type: ignore[arg-type]
    OUTPUT.validate(evaluate(s))  # type: ignore[arg-type]


BAD_INPUTS = [
    ("pii-values-not-counts", {"pii": {"entities": {"PERSON": "John"}}}),
    ("unknown-sector", {"principal_sector": "aliens"}),
    ("now-without-z", {"now": "2026-11-29T03:40:00+00:00"}),
    ("prompt-text-smuggled", {"prompt": "hello"}),
]


@pytest.mark.parametrize(("change",), [(c,) for _, c in BAD_INPUTS], ids=[n for n, _ in BAD_INPUTS])
def test_schema_rejects_inputs_outside_the_contract(change: dict[str, object]) -> None:
    inp = input_for(SCENARIOS[0])
    if "principal_sector" in change:
        inp["principal"]["sector"] = change["principal_sector"]
    else:
        inp.update(change)
    with pytest.raises(jsonschema.ValidationError):
        INPUT.validate(inp)
