"""Active health checks (``backends[].health_check``) end to end: two real fake backends on
127.0.0.1, the openai SDK. A primary that fails its probes is marked down and requests go
straight to the secondary (the primary is not sent the prompt to find out); the first probe that
succeeds brings it back; probes carry the credential and no content, and are counted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def second() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _metric(gw: RunningGateway, line_start: str) -> float:
    _, _, text = gw.request("GET", "/metrics", parse=False)
    for line in text.decode().splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    return 0.0


def test_a_backend_that_fails_its_checks_is_skipped_and_comes_back_when_they_pass(
    tmp_path: Path, upstream: FakeUpstream, second: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIMARY_KEY", "sk-primary-credential")
    raw = core_settings(tmp_path, upstream).model_dump(mode="json")
    primary, secondary = raw["backends"]
    primary["credential"] = {"env": "PRIMARY_KEY"}
    primary["health_check"] = {"interval_s": 0.2, "timeout_s": 1, "failures": 2}
    primary["max_retries"] = 0
    secondary["base_url"] = second.base_url
    gw = RunningGateway(
        Settings.model_validate(raw), Components(policy=FakeDecider(), pii_disabled=True)
    ).start()
    try:
        key = gw.create_key(user="ann", jurisdiction="AU", sector="private")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)

        def ask() -> None:
            reply = sdk.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "a private question"}]
            )
            assert reply.choices[0].message.content

        # healthy: probed with its credential and nothing else; requests go to it first
        _until(lambda: len(upstream.probes) >= 2, "probes of the primary")
        probe = upstream.probes[-1]
        assert probe["Authorization"] == "Bearer sk-primary-credential"
        assert "Content-Length" not in probe or probe["Content-Length"] == "0"
        assert second.probes == []  # the secondary has no health check
        ask()
        assert len(upstream.received) == 1 and second.received == []

        # it fails its probes: marked down; the next request goes straight to the secondary
        upstream.mode, upstream.error_status = "error", 503
        failed = 'portcullis_backend_probes_total{backend="primary",result="failed"}'
        _until(lambda: _metric(gw, failed) >= 2, "two failed probes")
        _until(
            lambda: _metric(gw, 'portcullis_backend_circuit_open{backend="primary"}') == 1.0,
            "the primary marked down",
        )
        ask()
        assert len(upstream.received) == 1  # the prompt never went to the failing backend
        assert len(second.received) == 1
        status, _, config = gw.request("GET", "/admin/config", token=RunningGateway.ADMIN_TOKEN)
        assert status == 200
        (listed,) = [b for b in config["backends"] if b["id"] == "primary"]
        assert listed["circuit_open"] is True

        # it passes again: brought back by the first good probe, not after a cooldown
        upstream.mode = "normal"
        _until(
            lambda: _metric(gw, 'portcullis_backend_circuit_open{backend="primary"}') == 0.0,
            "the primary back",
        )
        ask()
        assert len(upstream.received) == 2 and len(second.received) == 1
        assert _metric(gw, 'portcullis_backend_probes_total{backend="primary",result="ok"}') >= 3
    finally:
        gw.stop()


def test_a_health_check_added_by_a_reload_is_probed_at_once(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """With no backend checked the loop sleeps until a reload; the reload wakes it, and the
    new check's first probe does not wait for a timer."""
    import yaml

    from gateway.config import load_settings

    cfg = tmp_path / "gateway.yaml"
    raw = core_settings(tmp_path, upstream).model_dump(mode="json")
    cfg.write_text(yaml.safe_dump(raw))
    gw = RunningGateway(
        load_settings(cfg),
        Components(policy=FakeDecider(), pii_disabled=True),
        reload_from=lambda: load_settings(cfg),
    ).start()
    try:
        health = gw.app.state.services.health
        assert health is not None and health._wait() is None  # nothing to probe: no timer
        time.sleep(0.3)
        assert upstream.probes == []
        raw["backends"][0]["health_check"] = {"interval_s": 3600, "timeout_s": 1}
        cfg.write_text(yaml.safe_dump(raw))
        assert gw.reload()["applied"] is True
        _until(lambda: len(upstream.probes) == 1, "the first probe after the reload", 3.0)
        assert 3590 < health._wait() <= 3600  # the next one is an interval away
    finally:
        gw.stop()


def test_a_health_check_s_settings_are_checked() -> None:
    from gateway.config.backends import HealthCheck

    assert HealthCheck().path == "/models" and HealthCheck().interval_s == 30
    for bad in ({"path": "models"}, {"path": "/m?x=1"}, {"interval_s": 0}, {"failures": 0}):
        with pytest.raises(ValueError):
            HealthCheck.model_validate(bad)
