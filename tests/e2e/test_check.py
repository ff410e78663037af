"""``portcullis check`` against real dependencies: the database before and after its migration,
the real Redis, the embedded policy engine, and backends that answer, refuse the credential,
lack it, or cannot be reached (real fake backends on 127.0.0.1); single sign-on against the fake
provider (tests/support/oidc.py), tracing against the OTLP receiver, budget webhooks against a
real listener, each also misconfigured or with nothing listening. Nothing is written, no content
is sent (no span, no webhook post), no secret is printed."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from tests.support.oidc import FakeIdP
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.services import REDIS_URL
from tests.support.upstream import FakeUpstream
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def refusing() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    up.mode, up.error_status = "error", 401
    yield up
    up.stop()


def _backend(id_: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "base_url": url, "models": [f"m-{id_}"], "operator": "openai",
            "model_family": "gpt", "model_origin": "US", "hosting_country": "US", **extra}  # fmt: skip


def _check(cfg: Path) -> tuple[int, dict[str, Any]]:
    done = CliRunner().invoke(cli, ["-c", str(cfg), "check", "--json", "--timeout", "2"])
    return done.exit_code, json.loads(done.output)


def test_check_says_what_works_and_what_does_not_and_writes_nothing(
    tmp_path: Path, upstream: FakeUpstream, refusing: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHK_GOOD_KEY", "sk-good-credential-value")
    monkeypatch.delenv("CHK_MISSING_KEY", raising=False)
    data = tmp_path / "data"
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(data),
                "redis": {"url": REDIS_URL},
                "backends": [
                    _backend("good", upstream.base_url, credential={"env": "CHK_GOOD_KEY"}),
                    _backend("refused", refusing.base_url),
                    _backend("nocred", upstream.base_url, credential={"env": "CHK_MISSING_KEY"}),
                    _backend("gone", "http://127.0.0.1:1/v1"),
                ],
            }
        )
    )
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1 and out["ok"] is False
    assert by["configuration"]["status"] == "ok"
    assert by["database"]["status"] == "warn" and "not made yet" in by["database"]["detail"]
    assert by["redis"]["status"] == "ok" and by["policy"]["status"] == "ok"
    assert by["backend good"]["status"] == "ok" and "200" in by["backend good"]["detail"]
    assert by["backend refused"]["status"] == "fail"
    assert "401, the credential was refused" in by["backend refused"]["detail"]
    assert (
        by["backend nocred"]["status"] == "fail"
        and "CHK_MISSING_KEY" in by["backend nocred"]["detail"]
    )
    assert (
        by["backend gone"]["status"] == "fail"
        and "cannot be reached" in by["backend gone"]["detail"]
    )
    # the probe carried the credential and no content; nothing was written, nothing secret shown
    assert upstream.probes[-1]["Authorization"] == "Bearer sk-good-credential-value"
    assert upstream.received == [] and refusing.received == []
    assert not data.exists()
    assert "sk-good-credential-value" not in json.dumps(out)

    # migrated, the database is ok; with only the good backends the check passes
    assert CliRunner().invoke(cli, ["-c", str(cfg), "db", "upgrade"]).exit_code == 0
    raw = json.loads(cfg.read_text())
    raw["backends"] = raw["backends"][:1]
    cfg.write_text(json.dumps(raw))
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 0 and out["ok"] is True, out
    assert by["database"]["status"] == "ok" and "the newest" in by["database"]["detail"]
    text = CliRunner().invoke(cli, ["-c", str(cfg), "check"])
    assert text.exit_code == 0 and text.output.startswith("ok    configuration")


def test_a_database_that_does_not_answer_and_a_redis_that_is_not_there_fail(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(
        json.dumps(
            {
                "data_dir": str(tmp_path / "data"),
                "database": {"url": "postgresql+asyncpg://u:hunter2@127.0.0.1:1/x"},
                "redis": {"url": "redis://127.0.0.1:1/0"},
            }
        )
    )
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1
    assert by["database"]["status"] == "fail" and "does not answer" in by["database"]["detail"]
    assert by["redis"]["status"] == "fail"
    assert "hunter2" not in json.dumps(out)  # the password is never shown


# -- single sign-on, tracing, webhooks ---------------------------------------------------------

_SSO_SECRET = "sso-client-secret-value-42"
_HOOK_SECRET = "webhook-signing-secret-value-42"
_COLLECTOR_KEY = "collector-api-key-value-42"
_HOOK_TOKEN = "T0HOOKPATHTOKEN42"  # a chat webhook's URL path is its credential


def _free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _collector() -> Iterator[OtlpReceiver]:
    """The OTLP receiver (parses what it takes with the OpenTelemetry protobuf definitions) on
    its own event loop in a thread, as the check runs its own with asyncio.run."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = asyncio.run_coroutine_threadsafe(OtlpReceiver().__aenter__(), loop).result(10)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.__aexit__(None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    provider = FakeIdP(client_secret=_SSO_SECRET).start()
    yield provider
    provider.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def _sso(issuer: str, **extra: Any) -> dict[str, Any]:
    return {"issuer": issuer, "client_id": "portcullis-console", "jurisdiction": "AU",
            "client_secret_env": "CHK_SSO_SECRET", "public_url": "http://127.0.0.1:8080",
            "roles": {"compliance": ["auditor"]}, **extra}  # fmt: skip


def _write(tmp_path: Path, **sections: Any) -> Path:
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(json.dumps({"data_dir": str(tmp_path / "data"), **sections}))
    return cfg


def test_single_sign_on_tracing_and_webhooks_are_tried_without_a_span_a_post_or_a_secret(
    tmp_path: Path, idp: FakeIdP, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHK_SSO_SECRET", _SSO_SECRET)
    monkeypatch.setenv("CHK_HOOK_SECRET", _HOOK_SECRET)
    monkeypatch.setenv("CHK_OTLP_HEADERS", f"x-api-key={_COLLECTOR_KEY}")
    with _collector() as collector:
        cfg = _write(
            tmp_path,
            admin={"sso": _sso(idp.issuer)},
            tracing={"endpoint": collector.traces_url, "headers_env": "CHK_OTLP_HEADERS"},
            budgets={
                "key_usd": 10,
                "webhooks": [
                    {"url": f"{hook.url}/{_HOOK_TOKEN}", "secret_env": "CHK_HOOK_SECRET"},
                    {"url": hook.url},
                ],
            },
        )
        code, out = _check(cfg)
        text = CliRunner().invoke(cli, ["-c", str(cfg), "check", "--timeout", "2"])
    by = {c["check"]: c for c in out["checks"]}
    assert code == 0 and out["ok"] is True, out
    assert by["sso"]["status"] == "ok", by["sso"]
    assert "publishes 1 signing key" in by["sso"]["detail"]
    # the fake provider offers back-channel logout: the URI to register is named
    assert "/console/sso/backchannel-logout" in by["sso"]["detail"], by["sso"]
    assert by["sso client secret"] == {
        "check": "sso client secret",
        "status": "ok",
        "detail": "environment variable CHK_SSO_SECRET is set",
    }
    assert by["tracing"]["status"] == "ok" and ": 200 in" in by["tracing"]["detail"]
    assert by["webhook 0"]["status"] == "ok" and "alerts go signed" in by["webhook 0"]["detail"]
    assert by["webhook 1"]["status"] == "ok" and "unsigned" in by["webhook 1"]["detail"]
    # the collector took one export with no span in it, with its headers; no webhook was posted
    assert collector.spans == [] and len(collector.accepted) == 2  # json, then text
    assert collector.accepted[0]["headers"]["x-api-key"] == _COLLECTOR_KEY
    assert hook.posts == []
    assert idp.discoveries == 2 and idp.token_calls == []
    assert not (tmp_path / "data").exists()
    # the text says the same, and neither shows a secret or a webhook's path
    assert text.exit_code == 0
    lines = {
        line[6:].split("  ", 1)[0].strip(): line[:5].strip() for line in text.output.splitlines()
    }
    assert {k: lines[k] for k in ("sso", "sso client secret", "tracing", "webhook 0")} == {
        "sso": "ok",
        "sso client secret": "ok",
        "tracing": "ok",
        "webhook 0": "ok",
    }
    for shown in (text.output, json.dumps(out)):
        for secret in (_SSO_SECRET, _HOOK_SECRET, _COLLECTOR_KEY, _HOOK_TOKEN, "/hooks/budget"):
            assert secret not in shown


def test_nothing_is_said_of_single_sign_on_tracing_or_webhooks_when_none_is_configured(
    tmp_path: Path,
) -> None:
    _, out = _check(_write(tmp_path))
    names = {c["check"] for c in out["checks"]}
    assert not names & {"sso", "sso client secret", "tracing", "webhook 0"}


@pytest.mark.parametrize(
    ("case", "check", "says"),
    [
        ("wrong issuer", "sso", "names another issuer"),
        ("unreachable", "sso", "provider (ClientConnectorError)"),
        ("no discovery", "sso", "provider answered 404"),
        ("secret variable unset", "sso client secret", "CHK_SSO_SECRET is missing or empty"),
        ("secret file missing", "sso client secret", "missing or empty"),
    ],
)
def test_single_sign_on_that_would_not_work_fails(
    tmp_path: Path,
    idp: FakeIdP,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    check: str,
    says: str,
) -> None:
    monkeypatch.setenv("CHK_SSO_SECRET", _SSO_SECRET)
    sso = _sso(idp.issuer)
    if case == "wrong issuer":  # the same provider, named otherwise
        sso["issuer"] = f"http://localhost:{idp.port}"
    elif case == "unreachable":
        sso["issuer"] = f"http://127.0.0.1:{_free_port()}"
    elif case == "no discovery":
        sso["issuer"] = f"{idp.issuer}/realms/other"
    elif case == "secret variable unset":
        monkeypatch.delenv("CHK_SSO_SECRET")
    else:
        del sso["client_secret_env"]
        sso["client_secret_file"] = str(tmp_path / "absent")
    code, out = _check(_write(tmp_path, admin={"sso": sso}))
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1 and by[check]["status"] == "fail" and says in by[check]["detail"], by[check]
    other = "sso client secret" if check == "sso" else "sso"
    assert by[other]["status"] == "ok", by[other]
    assert _SSO_SECRET not in json.dumps(out)


@pytest.mark.parametrize("names_one", [True, False])
def test_sign_out_at_a_provider_without_an_end_session_endpoint_is_a_warning(
    tmp_path: Path, idp: FakeIdP, monkeypatch: pytest.MonkeyPatch, names_one: bool
) -> None:
    monkeypatch.setenv("CHK_SSO_SECRET", _SSO_SECRET)
    idp.end_session = names_one
    sso = _sso(idp.issuer, sign_out_at_provider=True)
    code, out = _check(_write(tmp_path, admin={"sso": sso}))
    (line,) = [c for c in out["checks"] if c["check"] == "sso"]
    assert code == 0, out
    if names_one:
        assert line["status"] == "ok", line
    else:
        assert line["status"] == "warn" and "no end_session_endpoint" in line["detail"], line


@pytest.mark.parametrize(
    ("back", "front", "switch", "says"),
    [
        (True, True, False, "back-channel logout: register http"),
        # Microsoft Entra ID: front-channel only; the check says what to set and register
        (False, True, False, "set frontchannel_logout and register http"),
        (False, True, True, "; front-channel logout: register http"),
        (False, False, False, "offers no back-channel logout (sessions there ending do not"),
    ],
)
def test_the_check_says_how_the_provider_tells_of_sessions_ending_there(
    tmp_path: Path,
    idp: FakeIdP,
    monkeypatch: pytest.MonkeyPatch,
    back: bool,
    front: bool,
    switch: bool,
    says: str,
) -> None:
    monkeypatch.setenv("CHK_SSO_SECRET", _SSO_SECRET)
    idp.back_channel, idp.front_channel = back, front
    try:
        sso = {**_sso(idp.issuer), "frontchannel_logout": switch}
        code, out = _check(_write(tmp_path, admin={"sso": sso}))
    finally:
        idp.back_channel = idp.front_channel = True
    (line,) = [c for c in out["checks"] if c["check"] == "sso"]
    assert code == 0 and line["status"] == "ok", out
    assert says in line["detail"], line
    uri = "/console/sso/backchannel-logout" if back else "/console/sso/frontchannel-logout"
    assert (uri in line["detail"]) is (back or front), line


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "cannot be reached (ClientConnectorError)"),
        ("headers refused", "401, the collector refused the headers_env headers"),
        ("headers unset", "CHK_OTLP_HEADERS is empty"),
    ],
)
def test_a_collector_that_would_not_take_spans_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, says: str
) -> None:
    monkeypatch.setenv("CHK_OTLP_HEADERS", f"x-api-key={_COLLECTOR_KEY}")
    with _collector() as collector:
        endpoint = collector.traces_url
        if case == "unreachable":
            endpoint = f"http://127.0.0.1:{_free_port()}/v1/traces"
        elif case == "headers refused":
            collector.answers.append((401, {}, b""))
        else:
            monkeypatch.delenv("CHK_OTLP_HEADERS")
        cfg = _write(tmp_path, tracing={"endpoint": endpoint, "headers_env": "CHK_OTLP_HEADERS"})
        code, out = _check(cfg)
    tracing = next(c for c in out["checks"] if c["check"] == "tracing")
    assert code == 1 and tracing["status"] == "fail" and says in tracing["detail"], tracing
    assert collector.spans == []
    assert _COLLECTOR_KEY not in json.dumps(out)


def test_a_webhook_that_cannot_be_reached_or_would_go_unsigned_fails(
    tmp_path: Path, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHK_HOOK_SECRET", raising=False)
    gone = f"http://127.0.0.1:{_free_port()}/hooks/{_HOOK_TOKEN}"
    cfg = _write(
        tmp_path,
        budgets={
            "key_usd": 10,
            "webhooks": [
                {"url": gone, "timeout_s": 1},
                {"url": hook.url, "secret_env": "CHK_HOOK_SECRET"},
                {"url": hook.url, "secret_file": str(tmp_path / "absent")},
            ],
        },
    )
    code, out = _check(cfg)
    by = {c["check"]: c for c in out["checks"]}
    assert code == 1
    assert by["webhook 0"]["status"] == "fail"
    assert "cannot be reached (ConnectionRefusedError)" in by["webhook 0"]["detail"]
    for i, where in ((1, "environment variable CHK_HOOK_SECRET"), (2, "file ")):
        assert by[f"webhook {i}"]["status"] == "fail", by[f"webhook {i}"]
        detail = by[f"webhook {i}"]["detail"]
        assert "takes a connection" in detail and f"({where}" in detail
        assert "alerts would go unsigned" in detail
    assert hook.posts == []
    assert _HOOK_TOKEN not in json.dumps(out)


@pytest.mark.parametrize(
    ("sections", "says"),
    [
        ({"limits": {"shadow": True}}, "limits.shadow on"),
        ({"budgets": {"shadow": True}}, "budgets.shadow on"),
        ({"limits": {"shadow": True}, "budgets": {"shadow": True}}, "limits.shadow and budgets"),
        ({}, None),
    ],
)
def test_shadow_mode_left_on_is_a_warning(
    tmp_path: Path, sections: dict[str, Any], says: str | None
) -> None:
    """A trial of new limits left in shadow mode leaves them unenforced: the check says so
    (a warning, not a failure), and says nothing when it is off."""
    _, out = _check(_write(tmp_path, **sections))
    lines = [c for c in out["checks"] if c["check"] == "shadow mode"]
    if says is None:
        assert lines == []
    else:
        (line,) = lines
        assert line["status"] == "warn" and says in line["detail"], line
