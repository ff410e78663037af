"""The runtime's catalogue entry is a valid BackendSpec with the self-hosted DeepSeek facts."""

from __future__ import annotations

import pytest

from gateway.config.backends import BackendSpec
from inference.catalog import backend_entry


@pytest.mark.parametrize(("country", "region"), [("AU", "AU-NSW"), ("kr", None), ("IT", "IT-MI")])
def test_backend_entry_validates_as_a_self_hosted_deepseek_backend(
    country: str, region: str | None
) -> None:
    spec = BackendSpec.model_validate(
        backend_entry(
            "http://127.0.0.1:8081/v1/",
            country,
            region,
            "deepseek-chat",
            served_model="tiny-deepseek",
        )
    )
    facts = spec.facts()
    assert facts["operator"] == "self" and facts["self_hosted"] is True
    assert facts["model_family"] == "deepseek" and facts["model_origin"] == "CN"
    assert facts["hosting_country"] == country.upper() and facts["hosting_region"] == region
    assert spec.base_url == "http://127.0.0.1:8081/v1"
    assert spec.upstream_model == {"deepseek-chat": "tiny-deepseek"}


def test_backend_entry_refuses_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        backend_entry("127.0.0.1:8081", "AU", None, "deepseek-chat")


def test_the_runtime_example_config_is_what_backend_entry_produces() -> None:
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[3] / "examples/runtime/self-hosted-runtime.yaml"
    (backend,) = yaml.safe_load(path.read_text())["backends"]
    spec = BackendSpec.model_validate(backend)
    made = backend_entry(
        "http://127.0.0.1:8081/v1", "AU", "AU-NSW", "deepseek-chat", served_model="tiny-deepseek"
    )
    assert {k: backend[k] for k in made} == made
    assert spec.self_hosted and spec.operator == "self"
