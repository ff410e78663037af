"""Strict configuration: unknown keys and bad values refuse to start, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gateway.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
BACKEND = {
    "id": "b",
    "base_url": "http://127.0.0.1:1/v1",
    "models": ["m"],
    "operator": "openai",
    "model_family": "gpt",
    "model_origin": "US",
    "hosting_country": "US",
}


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"servr": {}}, "servr: unknown key"),
        ({"server": {"prot": 1}}, "server.prot: unknown key"),
        ({"backends": [{**BACKEND, "colour": "red"}]}, "backends.0.colour: unknown key"),
        ({"backends": [{**BACKEND, "hosting_country": "ZZ"}]}, "backends.0.hosting_country"),
        ({"backends": [{**BACKEND, "base_url": "http://u:p@host/v1"}]}, "backends.0.base_url"),
        ({"backends": [{**BACKEND, "aliases": {"a": "nope"}}]}, "alias"),
        ({"backends": [BACKEND, BACKEND]}, "unique"),
        ({"backends": [{**BACKEND, "self_hosted": True}]}, "operator 'self'"),
        ({"policy": {"deadline_ms": 5000}}, "policy.deadline_ms"),
        ({"backends": [{**BACKEND, "passthrough_params": ["api_base"]}]}, "routing keys"),
        ({"requests": {"max_body_bytes": 10}}, "requests.max_body_bytes"),
        ({"budgets": {"alert_at": [0]}}, "budgets.alert_at"),
        ({"budgets": {"period": "fortnight"}}, "budgets.period"),
        ({"budgets": {"teams": {"a b": 5}}}, "budgets.teams"),
        ({"budgets": {"users": {"liz": -1}}}, "budgets.users"),
        ({"budgets": {"webhooks": [{"url": "http://hooks.example.org/x"}]}}, "https"),
        ({"budgets": {"webhooks": [{"url": "https://u:p@hooks.example.org/x"}]}}, "credentials"),
    ],
)
def test_bad_configuration_names_the_key(tmp_path: Path, doc: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_settings(write(tmp_path, doc), environ={})


def test_environment_overrides_nested_keys(tmp_path: Path) -> None:
    s = load_settings(
        None, environ={"PORTCULLIS_SERVER__PORT": "9001", "PORTCULLIS_POLICY__ENGINE": "opa"}
    )
    assert s.server.port == 9001 and s.policy.engine == "opa"
    with pytest.raises(ConfigError, match="nope: unknown key"):
        load_settings(None, environ={"PORTCULLIS_NOPE": "1"})
    # the test suite's slow-tier switch is no setting: a command run under it still loads
    assert load_settings(None, environ={"PORTCULLIS_SLOW": "1"}).server.port == 8080


def test_secret_variables_with_the_prefix_are_values_not_overrides(tmp_path: Path) -> None:
    # The admin token's documented default variable, and variables the file names for secrets,
    # are read as secrets; they are not configuration keys (once: "admin_token: unknown key").
    doc = {
        "keys": {"secret_env": "PORTCULLIS_KEY_SECRET"},
        "backends": [
            {
                "id": "b",
                "base_url": "http://127.0.0.1:1/v1",
                "models": ["m"],
                "operator": "openai",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "US",
                "credential": {"env": "PORTCULLIS_UPSTREAM_KEY"},
            }
        ],
        "admin": {
            "sso": {
                "issuer": "https://idp.example.org", "client_id": "c",
                "client_secret_env": "PORTCULLIS_SSO_SECRET", "public_url": "https://gw.example.org",
                "roles": {"g": ["auditor"]}, "jurisdiction": "AU",
            }
        },
        "budgets": {
            "webhooks": [{"url": "https://hooks.example.org/x", "secret_env": "PORTCULLIS_HOOK"}]
        },
    }  # fmt: skip
    env = {
        "PORTCULLIS_ADMIN_TOKEN": "t" * 32,
        "PORTCULLIS_KEY_SECRET": "s" * 32,
        "PORTCULLIS_UPSTREAM_KEY": "sk-1",
        "PORTCULLIS_SSO_SECRET": "c" * 32,
        "PORTCULLIS_HOOK": "h" * 32,
        "PORTCULLIS_SERVER__PORT": "9002",
    }
    s = load_settings(write(tmp_path, doc), environ=env)
    assert s.server.port == 9002 and s.admin.token_env == "PORTCULLIS_ADMIN_TOKEN"
    # a variable an override names for the admin token is a value too
    env = {"PORTCULLIS_ADMIN__TOKEN_ENV": "PORTCULLIS_OPS_TOKEN", "PORTCULLIS_OPS_TOKEN": "x"}
    assert load_settings(None, environ=env).admin.token_env == "PORTCULLIS_OPS_TOKEN"
    with pytest.raises(ConfigError, match="ops_token: unknown key"):
        load_settings(None, environ={"PORTCULLIS_OPS_TOKEN": "x"})


def test_no_configuration_gives_embedded_defaults() -> None:
    s = load_settings(None, environ={})
    assert s.database_url().startswith("sqlite+aiosqlite:///") and s.redis.url is None
    assert s.policy.engine == "embedded" and s.server.port == 8080


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(path: Path) -> None:
    settings = load_settings(path, environ={})
    assert settings.backends


def test_json_schema_in_docs_is_current() -> None:
    import json

    committed = json.loads((ROOT / "docs" / "config.schema.json").read_text())
    assert committed == Settings.model_json_schema(), "run: make schema"


def test_a_missing_credential_resolves_to_none_not_an_error(tmp_path: Path) -> None:
    from gateway.config.backends import Credential

    assert Credential(file=tmp_path / "absent").resolve() is None
    (tmp_path / "empty").write_text("\n")
    assert Credential(file=tmp_path / "empty").resolve() is None
    (tmp_path / "key").write_text("sk-test\n")
    value = Credential(file=tmp_path / "key").resolve()
    assert value is not None and value.get_secret_value() == "sk-test"
    assert Credential(file=tmp_path / "key").configured and not Credential().configured


def _backend(id_: str, **kw: object) -> dict[str, object]:
    return {
        "id": id_,
        "base_url": "http://127.0.0.1:9/v1",
        "models": ["m"],
        "operator": "openai",
        "model_family": "gpt",
        "model_origin": "US",
        "hosting_country": "US",
        **kw,
    }


@pytest.mark.parametrize(
    "backends",
    [
        # an alias on one backend that is another backend's model: 'm' would reach y as 'm'
        [_backend("x"), _backend("y", models=["n"], aliases={"m": "n"})],
        # names are matched case-folded; the upstream may not be
        [_backend("x"), _backend("z", models=["M"])],
        [_backend("x", aliases={"fast": "m"}), _backend("y", models=["n"], aliases={"fast": "n"})],
    ],
)
def test_a_name_that_means_two_models_is_refused(backends: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError, match="must mean one model everywhere"):
        Settings.model_validate({"backends": backends})


def test_the_same_model_and_alias_on_several_backends_is_fine() -> None:
    settings = Settings.model_validate(
        {"backends": [_backend("x", aliases={"fast": "m"}), _backend("y", aliases={"fast": "m"})]}
    )
    assert [b.id for b in settings.backends] == ["x", "y"]
