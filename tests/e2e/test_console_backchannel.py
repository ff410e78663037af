"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): the fake provider on 127.0.0.1
posts a signed logout token to the real gateway, which ends the console sessions that came from
the named provider session (``sid``) or subject (``sub``) on every replica, refuses a token it
cannot trust with an OAuth-shaped 400, and records each logout in the audit trail."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_console_sso import World, w, world  # noqa: F401 - the fixtures
from tests.support.oidc import FakeIdP

pytestmark = pytest.mark.e2e

post = FakeIdP.back_channel_logout


def _alive(at: World, session: str) -> bool:
    return at.gw.request("GET", "/admin/whoami", token=session)[0] == 200


def test_the_provider_ends_one_session_by_its_sid_and_the_rest_stay(w: World) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-liz", "sid": "op-session-1"}
    _, first = w.sign_in()
    w.idp.claims = {**w.idp.claims, "sid": "op-session-2"}  # the same person, another browser
    _, second = w.sign_in()
    assert _alive(w, first) and _alive(w, second)
    status, body = post(w.gw.url, w.idp.logout_token(sid="op-session-1"))
    assert (status, body) == (200, None)
    assert not _alive(w, first)
    assert _alive(w, second)  # only the provider session named
    entry = w.entries("access")[-1]
    assert entry["actor"] == "sso-provider"
    assert entry["action"] == {"op": "console_provider_sign_out", "by": "sid", "channel": "back"}
    # nothing of the provider's identifiers is kept in the record
    assert "op-session-1" not in str(entry) and "u-liz" not in str(entry)


def test_the_provider_ends_every_session_of_a_subject(w: World) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-sam"}  # a provider that names no sid
    _, first = w.sign_in()
    _, second = w.sign_in()
    w.idp.claims = {**w.idp.claims, "sub": "u-other"}
    _, someone_else = w.sign_in()
    status, _ = post(w.gw.url, w.idp.logout_token(sub="u-sam"))
    assert status == 200
    assert not _alive(w, first) and not _alive(w, second)
    assert _alive(w, someone_else)
    # a session begun after the logout is not ended by it
    time.sleep(1.1)  # sessions carry their start to the second
    w.idp.claims = {**w.idp.claims, "sub": "u-sam"}
    _, later = w.sign_in()
    assert _alive(w, later)


@pytest.mark.parametrize("fault", ["signature", "audience", "event", "nonce", "old", "nobody"])
def test_a_logout_token_that_cannot_be_trusted_ends_nothing(w: World, fault: str) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-kim", "sid": "op-kim"}
    _, session = w.sign_in()
    status, body = post(w.gw.url, w.idp.logout_token(fault, sub="u-kim", sid="op-kim"))
    assert status == 400 and body["error"] == "invalid_request", body
    assert "u-kim" not in body["error_description"] and "op-kim" not in body["error_description"]
    assert _alive(w, session)


def test_a_replayed_logout_token_is_refused(w: World) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-ray", "sid": "op-ray"}
    token = w.idp.logout_token(sub="u-ray")
    assert post(w.gw.url, token)[0] == 200
    time.sleep(1.1)
    _, session = w.sign_in()  # signed in again since
    status, body = post(w.gw.url, token)  # the same token, sent again
    assert status == 400 and "already used" in body["error_description"], body
    assert _alive(w, session)


def test_only_a_form_with_one_logout_token_is_read(w: World) -> None:  # noqa: F811
    import urllib.error
    import urllib.request

    def send(data: bytes, kind: str) -> int:
        req = urllib.request.Request(
            w.gw.url + "/console/sso/backchannel-logout", data=data,
            headers={"Content-Type": kind},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    token = w.idp.logout_token(sub="u-x")
    assert send(b'{"logout_token": "' + token.encode() + b'"}', "application/json") == 415
    assert send(b"", "application/x-www-form-urlencoded") == 400
    twice = f"logout_token={token}&logout_token={token}".encode()
    assert send(twice, "application/x-www-form-urlencoded") == 400
    assert send(b"logout_token=" + b"a" * 20_000, "application/x-www-form-urlencoded") == 413
    assert send(b"logout_token=not-a-jwt", "application/x-www-form-urlencoded") == 400
