"""compose.yaml cannot run here (no Docker engine): check its structure instead."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_is_valid_and_complete() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert {"gateway-1", "gateway-2", "postgres", "redis", "opa", "lb", "migrate", "vllm"} <= set(
        services
    )
    for name, svc in services.items():
        assert "image" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for secret in svc.get("secrets", []):
            assert secret in doc["secrets"], (name, secret)
    assert services["opa"]["image"].startswith("openpolicyagent/opa:")
    # OPA loads the bundle built by `portcullis policy bundle`, not the raw folder.
    assert "/bundle/bundle.tar.gz" in services["opa"]["command"]
    assert services["policy-bundle"]["command"][-3:] == [
        "policy",
        "bundle",
        "/bundle/bundle.tar.gz",
    ]
    assert services["vllm"]["profiles"] == ["gpu"]
    env = services["gateway-1"]["environment"]
    assert env["PORTCULLIS_POLICY__ENGINE"] == "opa" and env["PORTCULLIS_REDIS__URL"].startswith(
        "redis://"
    )


def test_compose_gateway_configuration_loads() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    env = {
        k: v
        for k, v in doc["services"]["gateway-1"]["environment"].items()
        if k.startswith("PORTCULLIS_") and "FILE" not in k
    }
    env["PORTCULLIS_DATABASE__URL"] = "postgresql+asyncpg://u:p@postgres/portcullis"
    settings = load_settings(ROOT / "deploy" / "config.yaml", environ=env)
    assert settings.policy.engine == "opa" and any(b.self_hosted for b in settings.backends)


def test_compose_shipper_runs_a_command_the_cli_takes() -> None:
    from gateway.cli import cli

    svc = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["audit-shipper"]
    assert svc["profiles"] == ["shipping"] and svc["command"][0] == "portcullis"
    url = "http://otel-collector:4318/v1/logs"
    args = [a.replace("${OTLP_LOGS_URL:-" + url + "}", url) for a in svc["command"][1:]]
    root = cli.make_context("portcullis", args)
    rest = [*root._protected_args, *root.args]
    group = cli.get_command(root, rest[0])
    assert group is not None
    sub = group.make_context(rest[0], rest[1:], parent=root)  # type: ignore[attr-defined]
    rest = [*sub._protected_args, *sub.args]
    ship = group.get_command(sub, rest[0])  # type: ignore[attr-defined]
    params = ship.make_context(rest[0], rest[1:], parent=sub).params
    assert params["to"] == url and params["follow"] is True
    assert str(params["cursor"]).startswith("/var/lib/portcullis-ship/")
