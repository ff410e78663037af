"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0), for providers without
back-channel logout (Microsoft Entra ID): the provider's sign-out page loads the gateway's
``/console/sso/frontchannel-logout?sid=…`` in a frame of the person's browser, and the console
sessions begun from that provider session end. The call carries no signature, so it is off
unless ``admin.sso.frontchannel_logout`` is set, checks ``iss`` when one is given, is taken
only from ``admin.networks`` and at most so many times a minute; each logout is recorded.

Driven through the real gateway and the fake provider on 127.0.0.1; the last test in a real
browser (the provider's page framing the gateway's URI)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.test_console_sso import World, _own_gateway, w, world  # noqa: F401 - fixtures
from tests.support.oidc import FakeIdP
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

_PATH = "/console/sso/frontchannel-logout"


def _call(url: str, **params: Any) -> tuple[int, Any, bytes]:
    """GET the front-channel logout URI as the provider's frame does: (status, headers, body).
    A list value repeats its parameter."""
    query = urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(f"{url}{_PATH}?{query}", timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _alive(at: World, session: str) -> bool:
    return at.gw.request("GET", "/admin/whoami", token=session)[0] == 200


def _front_channel_entries(at: World) -> list[dict[str, Any]]:
    return [e for e in at.entries("access") if e["action"].get("channel") == "front"]


def test_the_provider_page_ends_the_sessions_of_its_sid_and_the_rest_stay(w: World) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-ann", "sid": "entra-session-1"}
    _, first = w.sign_in()
    _, same_browser = w.sign_in()  # a second console tab on the same provider session
    w.idp.claims = {**w.idp.claims, "sid": "entra-session-2"}  # the same person elsewhere
    _, elsewhere = w.sign_in()
    recorded = len(_front_channel_entries(w))
    status, headers, body = _call(w.gw.url, iss=w.idp.issuer, sid="entra-session-1")
    assert status == 200, body
    # not cached, a page the provider's frame may show (and nothing in it)
    assert headers["Content-Type"].startswith("text/html")
    assert "no-store" in headers["Cache-Control"] and headers["Pragma"] == "no-cache"
    assert headers["Content-Security-Policy"] == (
        f"default-src 'none'; frame-ancestors {w.idp.base}"
    )
    assert b"<title>" in body and b"entra-session" not in body
    assert not _alive(w, first) and not _alive(w, same_browser)
    assert _alive(w, elsewhere)  # only the provider session named
    entries = _front_channel_entries(w)
    assert len(entries) == recorded + 1
    assert entries[-1]["actor"] == "sso-provider"
    assert entries[-1]["action"] == {
        "op": "console_provider_sign_out", "by": "sid", "channel": "front"
    }  # fmt: skip
    assert "entra-session" not in str(entries[-1]) and "u-ann" not in str(entries[-1])


def test_a_provider_that_sends_no_issuer_as_entra_id_does_is_heard(w: World) -> None:  # noqa: F811
    w.idp.claims = {**w.idp.claims, "sub": "u-bo", "sid": "007e3899-e104-731f-b675-0617c1f2dd72"}
    _, session = w.sign_in()
    status, _, _ = _call(w.gw.url, sid="007e3899-e104-731f-b675-0617c1f2dd72")
    assert status == 200
    assert not _alive(w, session)
    # a session begun after the logout is not ended by it
    time.sleep(1.1)  # sessions carry their start to the second
    _, later = w.sign_in()
    assert _alive(w, later)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"iss": "https://another-provider.example.org", "sid": "op-cy"}, "iss"),
        ({}, "sid"),
        ({"sid": ""}, "sid"),
        ({"sid": ["op-cy", "op-cy"]}, "one sid"),
        ({"sid": "op-cy", "iss": ["a", "b"]}, "at most one iss"),
        ({"sid": "x" * 300}, "sid"),
        ({"sid": "op\x00cy"}, "sid"),
    ],
)
def test_a_call_that_names_no_session_of_this_provider_ends_nothing(
    w: World,  # noqa: F811
    params: dict[str, Any],
    says: str,
) -> None:
    w.idp.claims = {**w.idp.claims, "sub": "u-cy", "sid": "op-cy"}
    _, session = w.sign_in()
    recorded = len(_front_channel_entries(w))
    status, _, body = _call(w.gw.url, **params)
    assert status == 400, body
    answer = json.loads(body)
    assert answer["error"] == "invalid_request" and says in answer["error_description"], answer
    assert "op-cy" not in answer["error_description"]
    assert _alive(w, session)
    assert len(_front_channel_entries(w)) == recorded


def test_off_unless_switched_on_and_never_from_outside_the_admin_networks(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    idp = FakeIdP().start()
    idp.claims = {**idp.claims, "sid": "op-di"}
    for part in ("off", "fenced"):
        (tmp_path / part).mkdir()
    try:
        off = _own_gateway(tmp_path / "off", upstream, idp)
        try:
            _, session = World(off, idp).sign_in()
            status, _, body = _call(off.url, sid="op-di")
            assert status == 404 and b"off" in body, body
            assert off.request("GET", "/admin/whoami", token=session)[0] == 200
        finally:
            off.stop()
        # admin.networks: the tests' 127.0.0.1 is outside 10.0.0.0/8
        fenced = _own_gateway(
            tmp_path / "fenced", upstream, idp, sso={"frontchannel_logout": True},
            networks=["10.0.0.0/8"],
        )  # fmt: skip
        try:
            status, _, body = _call(fenced.url, sid="op-di")
            assert status == 403 and b"admin.networks" in body, body
        finally:
            fenced.stop()
    finally:
        idp.stop()


def test_at_most_so_many_a_minute_are_taken(tmp_path: Path, upstream: FakeUpstream) -> None:
    """The call needs no signature: each replica takes ``frontchannel_logout_per_minute`` a
    minute (so a flood of made-up sids cannot fill the ended sessions' table or the trail)."""
    idp = FakeIdP().start()
    sso = {"frontchannel_logout": True, "frontchannel_logout_per_minute": 3}
    gw = _own_gateway(tmp_path, upstream, idp, sso=sso)
    try:
        statuses = [_call(gw.url, sid=f"made-up-{n}")[0] for n in range(3)]
        status, headers, body = _call(gw.url, sid="made-up-4")
        assert statuses == [200, 200, 200]
        assert status == 429 and headers["Retry-After"] == "1", body
        entries = World(gw, idp).entries("access")
        assert sum(e["action"].get("channel") == "front" for e in entries) == 3
    finally:
        gw.stop()
        idp.stop()


@pytest.mark.slow
@pytest.mark.browser
def test_signing_out_at_the_provider_ends_the_console_session_in_a_real_browser(
    w: World,  # noqa: F811
) -> None:
    """Chromium signs in to the console through the provider, then signs out at the provider
    (as from another application): the provider's page frames the gateway's front-channel URI
    with the person's provider session, without iss as Entra ID does, and the console's
    session ends; the console, reloaded, asks the person to sign in again."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser_cors import ARGS, CHROMIUM
    from tests.support.browser import watched_page

    w.idp.claims = {**w.idp.claims, "sid": "entra-browser-session"}
    w.idp.front_channel_uri = w.gw.url + _PATH
    w.idp.front_channel_iss = False
    problems: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = watched_page(browser, problems)
            page.goto(w.gw.url + "/console/")
            page.click("#sso-login")
            expect(page.locator("#whoami")).to_contain_text("sso:liz@example.org")
            session = page.evaluate("Object.values(sessionStorage)[0]")
            recorded = len(_front_channel_entries(w))
            provider = browser.new_page()  # the provider's sign-out page, in another tab
            with provider.expect_response(lambda r: _PATH in r.url) as framed:
                provider.goto(w.idp.base + "/logout")
            assert framed.value.status == 200
            provider.wait_for_function("document.title === 'signed out'")
            assert w.gw.request("GET", "/admin/whoami", token=session)[0] == 401
            assert len(_front_channel_entries(w)) == recorded + 1
            page.reload()
            expect(page.locator("#signin-screen")).to_be_visible()
            browser.close()
    finally:
        w.idp.front_channel_uri = None
        w.idp.front_channel_iss = True
    # the console's own page saw no script error or policy violation but the ended session's
    # 401 on reloading (the provider's tab is not watched: its frame's answer may be refused
    # display there, and that is the provider's)
    assert [p for p in problems if "status of 401" not in p] == [], problems
    assert len(problems) <= 1, problems
