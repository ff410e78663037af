"""A gateway with two backends in front of the fake upstream, for the core end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.support.fakes import FakeDecider, MemoryAuditSink
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.upstream import FakeUpstream


def core_settings(tmp: Path, upstream: FakeUpstream, **extra: object) -> Settings:
    token_file = write_admin_token(tmp)
    raw = {
        "data_dir": str(tmp),
        "admin": {"token_file": str(token_file), "token_env": None},
        "limits": {"requests_per_minute": 100000, "tokens_per_minute": 0},
        "backends": [
            {
                "id": "primary",
                "base_url": upstream.base_url,
                "models": ["gpt-test", "emb-test"],
                "aliases": {"fast": "gpt-test"},
                "passthrough_params": ["top_k"],
                "operator": "openai",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "US",
                "priority": 10,
                "max_retries": 1,
                "timeouts": {"connect_s": 2, "first_byte_s": 2, "idle_s": 1, "total_s": 10},
            },
            {
                "id": "secondary",
                "base_url": upstream.base_url,
                "models": ["gpt-test"],
                "operator": "microsoft",
                "model_family": "gpt",
                "model_origin": "US",
                "hosting_country": "SE",
                "priority": 20,
                "timeouts": {"connect_s": 2, "first_byte_s": 2, "idle_s": 1, "total_s": 10},
            },
        ],
        **extra,
    }
    return Settings.model_validate(raw)


def overlay_gateway(
    tmp: Path, upstream: FakeUpstream, overlay: str, **sections: object
) -> RunningGateway:
    """A started gateway read from a configuration file, as an operator runs it: the real
    embedded policy with one example overlay (``policies/overlays/examples/<overlay>``), the
    real PII guard, the audit trail on SQLite in ``tmp``, one backend in front of ``upstream``;
    ``sections`` added to the file."""
    import yaml

    from gateway.config import load_settings

    examples = Path(__file__).resolve().parents[2] / "policies/overlays/examples"
    path = tmp / "config.yaml"
    path.write_text(
        yaml.safe_dump({
            "data_dir": str(tmp),
            "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
            "policy": {"overlays": [str(examples / overlay)]},
            "backends": [{
                "id": "primary", "base_url": upstream.base_url, "models": ["gpt-test"],
                "operator": "openai", "model_family": "gpt", "model_origin": "US",
                "hosting_country": "US",
            }],
            **sections,
        })
    )  # fmt: skip
    return RunningGateway(load_settings(path)).start()


def deepseek_pair(tmp: Path, upstream: FakeUpstream) -> dict[str, Any]:
    """Raw configuration: DeepSeek's hosted service (CN) and its weights self-hosted in AU-NSW,
    both in front of the fake upstream (the policy and audit end-to-end tests)."""
    common = {
        "models": ["deepseek-chat"],
        "model_family": "deepseek",
        "model_origin": "CN",
        "timeouts": {"connect_s": 2, "first_byte_s": 5, "idle_s": 5, "total_s": 10},
    }
    return {
        "data_dir": str(tmp),
        "admin": {"token_file": str(write_admin_token(tmp)), "token_env": None},
        "backends": [
            {
                "id": "deepseek-hosted",
                "base_url": upstream.base_url,
                "operator": "deepseek",
                "hosting_country": "CN",
                "priority": 10,
                **common,
            },
            {
                "id": "deepseek-self",
                "base_url": upstream.base_url,
                "operator": "self",
                "self_hosted": True,
                "hosting_country": "AU",
                "hosting_region": "AU-NSW",
                "priority": 20,
                **common,
            },
        ],
    }


class Harness:
    def __init__(self, gw: RunningGateway, decider: FakeDecider, audit: MemoryAuditSink) -> None:
        self.gw, self.decider, self.audit = gw, decider, audit
        self.key = gw.create_key(user="alice", jurisdiction="AU-NSW", sector="private", team="eng")


@pytest.fixture(scope="module")
def harness(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("gw")
    decider, audit = FakeDecider(), MemoryAuditSink()
    gw = RunningGateway(
        core_settings(tmp, upstream_server),
        Components(policy=decider, audit=audit, pii_disabled=True),
    ).start()
    yield Harness(gw, decider, audit)
    gw.stop()


@pytest.fixture
def h(harness: Harness, upstream: FakeUpstream) -> Iterator[Harness]:
    harness.decider.fail = False
    harness.decider.delay_s = 0
    harness.audit.down = False
    # Each test starts with closed circuits: failures of an earlier test must not reroute it.
    harness.gw.app.state.services.router.breaker._state.clear()
    yield harness


def settled(h: Harness) -> int:
    """How many completion records there are once the earlier tests' have all landed (each is
    written in a background task after its answer: one can land after the next test began)."""
    seen = -1
    while (now := len(h.audit.completions)) != seen:
        seen = now
        time.sleep(0.1)
    return seen


def wait_for_completions(h: Harness, before: int, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 3
    while len(h.audit.completions) < before + n and time.monotonic() < deadline:
        time.sleep(0.02)
    return h.audit.completions[before:]


class FileGateway:
    """A started gateway read from a configuration file, as an operator runs it: the DeepSeek
    pair in front of ``upstream``, self-hosting permitted, ``sections`` added. ``raw`` is the
    file's content; :meth:`rewrite` writes it back and reloads, as an operator would."""

    def __init__(self, tmp: Path, upstream: FakeUpstream, **sections: Any) -> None:
        from gateway.config import load_settings

        self.path = tmp / "gateway.yaml"
        self.raw: dict[str, Any] = {
            **deepseek_pair(tmp, upstream),
            "policy": {"self_hosted_stance": "permit"},
            **sections,
        }
        self._write()
        self.gw = RunningGateway(
            load_settings(self.path), reload_from=lambda: load_settings(self.path)
        ).start()

    def _write(self) -> None:
        import yaml

        self.path.write_text(yaml.safe_dump(self.raw))

    def rewrite(self) -> dict[str, Any]:
        """The file written again from ``raw`` and reloaded: the reload's answer."""
        self._write()
        return self.gw.reload()
