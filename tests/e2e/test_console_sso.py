"""Console sign-in through OpenID Connect: the real gateway, a fake provider on 127.0.0.1
(tests/support/oidc.py), the browser's redirects followed by hand with its cookie.

The evidence: what the session may do on the admin API (and may not do on /v1), what the
provider's token endpoint was sent (PKCE verifier, client authentication), the audit trail's
sign-in entries, and every wrong ID token refused without a session.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from audit.store import parse_utc
from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import core_settings
from tests.support.fakes import FakeDecider
from tests.support.gateway import RunningGateway, write_admin_token
from tests.support.oidc import FakeIdP
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the test follows each redirect itself, as a browser would


_OPENER = urllib.request.build_opener(_Stay)


def fetch(url: str, cookie: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url)
    if cookie:
        req.add_header("Cookie", cookie)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.headers


class World:
    def __init__(self, gw: RunningGateway, idp: FakeIdP) -> None:
        self.gw, self.idp = gw, idp

    def entries(self, kind: str) -> list[dict[str, Any]]:
        """The audit trail's entries of ``kind``, oldest first (read with the admin token)."""
        status, _, page = self.gw.request(
            "GET", f"/admin/audit/entries?kind={kind}&limit=500", token=RunningGateway.ADMIN_TOKEN
        )
        assert status == 200, page
        return [row["entry"] for row in reversed(page["data"])]

    def sign_ins(self) -> list[dict[str, Any]]:
        return [e for e in self.entries("access") if "console_sign_in" in e["action"]["op"]]

    def sign_in(self, tamper_state: bool = False) -> tuple[str, str]:
        """Through the whole flow: (``sso`` or ``sso_error``, its value from the fragment)."""
        status, headers = fetch(self.gw.url + "/console/sso/login")
        assert status == 302, status
        jar = SimpleCookie(headers["Set-Cookie"])
        flow = jar["pcs_sso"]
        assert flow["httponly"] and flow["samesite"].lower() == "lax"
        assert flow["path"] == "/console/sso"
        cookie = f"pcs_sso={flow.value}"
        status, headers = fetch(headers["Location"])  # the provider signs the person in
        assert status == 302, status
        back = headers["Location"]
        assert back.startswith(self.gw.url + "/console/sso/callback?")
        if tamper_state:
            back = back.replace("state=", "state=x")
        status, headers = fetch(back, cookie)
        assert status == 303, status
        fragment = urlsplit(headers["Location"]).fragment
        name, _, value = fragment.partition("=")
        assert headers["Location"].startswith("/console/#")
        assert "no-store" in headers["Cache-Control"]
        return name, value


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream
) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("sso")
    idp = FakeIdP().start()
    (tmp / "idp.secret").write_text(idp.client_secret)
    gw = RunningGateway(core_settings(tmp, upstream_server), Components(policy=FakeDecider()))
    sso = {
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_secret_file": str(tmp / "idp.secret"),
        "public_url": gw.url,
        "roles": {
            "compliance": ["auditor"],
            "platform": ["admin", "auditor"],
            "everyone": ["staff"],
        },
        "self_service": {
            "max_keys": 2,
            "expires_in_days": 30,
            "budget_usd": 5,
            "budget_period": "week",
            "models": ["gpt-test"],
            "networks": ["127.0.0.0/8"],  # the tests' own address: the key works from here
        },
        "tags": {"platform": ["audit-scope:all"]},
        "jurisdiction": "AU",
        "jurisdiction_claim": "jurisdiction",
        "team_claim": "department",
        "tenant_claim": "org",
        "session_ttl_s": 300,
        "sign_out_at_provider": True,
        "frontchannel_logout": True,
    }
    admin = {"token_file": str(write_admin_token(tmp)), "token_env": None, "sso": sso}
    gw.settings = core_settings(tmp, upstream_server, admin=admin, budgets={"user_usd": 10})
    gw.start()
    yield World(gw, idp)
    gw.stop()
    idp.stop()


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.idp.fault = None
    world.idp.claims = {"email": "liz@example.org", "groups": ["compliance"]}
    yield world


def test_an_auditor_signs_in_and_the_session_reads_the_trail_but_nothing_else(w: World) -> None:
    w.idp.claims = {"email": "liz@example.org", "groups": ["compliance", "staff"],
                    "jurisdiction": "au-nsw", "department": "legal"}  # fmt: skip
    before = len(w.sign_ins())
    kind, session = w.sign_in()
    assert kind == "sso" and session.startswith("pcc_")
    status, _, me = w.gw.request("GET", "/admin/whoami", token=session)
    assert status == 200, me
    assert me["actor"] == "sso:liz@example.org" and me["roles"] == ["auditor"]
    assert me["jurisdiction"] == "AU-NSW" and me["can"]["audit"] and not me["can"]["keys"]
    assert w.gw.request("GET", "/admin/audit/entries", token=session)[0] == 200
    assert w.gw.request("GET", "/admin/keys", token=session)[0] == 403  # not an admin
    # a console session is no API key
    status, _, err = w.gw.request(
        "POST", "/v1/chat/completions",
        {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}, token=session,
    )  # fmt: skip
    assert status == 401 and err["error"]["code"] == "invalid_api_key"
    # the sign-in is on the record before the session was given, under the person's name
    signed = w.sign_ins()[before:]
    assert [e["action"]["op"] for e in signed] == ["console_sign_in"]
    assert signed[0]["actor"] == "sso:liz@example.org"
    assert signed[0]["principal"]["team"] == "legal"
    assert session[4:20] not in repr(w.entries("access"))
    # the provider was sent the PKCE verifier, and the client authenticated with Basic
    call = w.idp.token_calls[-1]
    assert call["form"]["code_verifier"] and call["auth"].startswith("Basic ")
    assert "client_secret" not in call["form"]


def test_an_administrator_by_group_manages_keys_and_acts_under_their_own_name(w: World) -> None:
    w.idp.claims = {"email": "pat@example.org", "groups": ["platform"]}
    _, session = w.sign_in()
    status, _, made = w.gw.request(
        "POST", "/admin/keys", {"user": "bot", "jurisdiction": "AU", "sector": "private"},
        token=session,
    )  # fmt: skip
    assert status == 201, made
    created = [e for e in w.entries("key") if e.get("actor") == "sso:pat@example.org"]
    assert created, "the key's creation is recorded under the person who made it"
    me = w.gw.request("GET", "/admin/whoami", token=session)[2]
    assert me["roles"] == ["admin", "auditor"] and me["can"]["keys"]


def test_someone_in_no_mapped_group_is_refused_and_that_is_recorded(w: World) -> None:
    w.idp.claims = {"email": "eve@example.org", "groups": ["staff"]}
    before = len(w.sign_ins())
    assert w.sign_in() == ("sso_error", "not_permitted")
    refused = w.sign_ins()[before:]
    assert [e["action"]["op"] for e in refused] == ["console_sign_in_refused"]
    assert "eve@example.org" not in repr(refused)  # no claim's value on the record


@pytest.mark.parametrize(
    "fault", ["audience", "issuer", "expired", "nonce", "signature", "none", "hs256"]
)
def test_a_wrong_id_token_gives_no_session(w: World, fault: str) -> None:
    w.idp.fault = fault
    before = len(w.sign_ins())
    assert w.sign_in() == ("sso_error", "invalid_token")
    assert len(w.sign_ins()) == before


def test_a_mismatched_state_or_a_missing_cookie_gives_no_session(w: World) -> None:
    assert w.sign_in(tamper_state=True) == ("sso_error", "invalid_state")
    status, headers = fetch(w.gw.url + "/console/sso/callback?code=x&state=y")
    assert status == 303 and headers["Location"] == "/console/#sso_error=expired"


def test_a_forged_tampered_or_expired_session_is_refused(w: World) -> None:
    _, session = w.sign_in()
    body, mac = session[4:].split(".")
    for bad in (
        "pcc_" + body + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),  # signature
        "pcc_" + body[:-4] + "." + mac,  # payload
        "pcc_e30." + mac,
        "pcc_" + "x" * 9000,
    ):
        status, _, err = w.gw.request("GET", "/admin/whoami", token=bad)
        assert status == 401, (bad[:20], err)
    sso = w.gw.app.state.services.sso
    payload = sso.sessions.verify(session)
    expired = sso.sessions.sign({**payload, "exp": int(time.time()) - 1})
    assert w.gw.request("GET", "/admin/whoami", token=expired)[0] == 401


def test_signing_out_ends_the_session_everywhere_and_is_recorded(w: World) -> None:
    _, session = w.sign_in()
    _, other = w.sign_in()  # the same person in another tab
    assert w.gw.request("POST", "/admin/console/sign-out", token=session)[0] == 200
    status, _, err = w.gw.request("GET", "/admin/whoami", token=session)
    assert status == 401 and "session" in err["error"]["message"]
    assert w.gw.request("GET", "/admin/whoami", token=other)[0] == 200  # only that one
    ops = [e["action"]["op"] for e in w.entries("access")]
    assert ops[-1] == "console_sign_out"
    # a key or the admin token has no session to end
    assert (
        w.gw.request("POST", "/admin/console/sign-out", token=RunningGateway.ADMIN_TOKEN)[0] == 409
    )


def test_an_administrator_ends_every_session_of_a_person(w: World) -> None:
    _, first = w.sign_in()
    _, second = w.sign_in()
    time.sleep(1.1)  # sessions carry their start to the second; a cut-off ends those before it
    status, _, done = w.gw.request(
        "POST", "/admin/console/sessions/end", {"user": "liz@example.org"},
        token=RunningGateway.ADMIN_TOKEN,
    )  # fmt: skip
    assert status == 200 and done["user"] == "liz@example.org"
    for ended in (first, second):
        assert w.gw.request("GET", "/admin/whoami", token=ended)[0] == 401
    time.sleep(1.1)
    _, again = w.sign_in()  # signing in afresh works: the cut-off ended what came before it
    assert w.gw.request("GET", "/admin/whoami", token=again)[0] == 200
    entry = w.entries("access")[-2]
    assert entry["action"] == {"op": "console_sessions_ended", "user": "liz@example.org"}
    assert entry["actor"] == "admin-token"
    # an auditor may not; a body of another shape is refused naming the field
    assert w.gw.request("POST", "/admin/console/sessions/end", {"user": "x"}, token=again)[0] == 403
    status, _, err = w.gw.request(
        "POST", "/admin/console/sessions/end", {"user": "x", "also": 1},
        token=RunningGateway.ADMIN_TOKEN,
    )  # fmt: skip
    assert status == 400 and err["error"]["param"] == "user"


def test_the_page_is_told_whether_sso_is_on(
    w: World, tmp_path: Path, upstream: FakeUpstream
) -> None:
    assert w.gw.request("GET", "/console/sso/status")[2] == {"enabled": True}
    plain = RunningGateway(core_settings(tmp_path, upstream)).start()
    try:
        assert plain.request("GET", "/console/sso/status")[2] == {"enabled": False}
        assert plain.request("GET", "/console/sso/login")[0] == 404
    finally:
        plain.stop()


def test_a_provider_that_does_not_answer_gives_no_session_and_says_so(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    from tests.support.gateway import _free_port

    (tmp_path / "s").write_text("x")
    sso = {
        "issuer": f"http://127.0.0.1:{_free_port()}",  # nothing listens there
        "client_id": "c",
        "client_secret_file": str(tmp_path / "s"),
        "public_url": "http://127.0.0.1:1",
        "roles": {"g": ["auditor"]},
        "jurisdiction": "AU",
        "timeout_s": 2,
    }
    admin = {"token_file": str(write_admin_token(tmp_path)), "token_env": None, "sso": sso}
    gw = RunningGateway(core_settings(tmp_path, upstream, admin=admin)).start()
    try:
        status, headers = fetch(gw.url + "/console/sso/login")
        assert status == 303
        assert headers["Location"] == "/console/#sso_error=provider_unavailable"
    finally:
        gw.stop()


def _own_gateway(
    tmp_path: Path, upstream: FakeUpstream, idp: FakeIdP, **admin_extra: Any
) -> RunningGateway:
    """A gateway of its own signing in through ``idp`` (the auditor's group only), started."""
    (tmp_path / "idp.secret").write_text(idp.client_secret)
    gw = RunningGateway(core_settings(tmp_path, upstream))
    sso = {
        "issuer": idp.issuer,
        "client_id": idp.client_id,
        "client_secret_file": str(tmp_path / "idp.secret"),
        "public_url": gw.url,
        "roles": {"compliance": ["auditor"]},
        "jurisdiction": "AU",
        **admin_extra.pop("sso", {}),
    }
    admin = {
        "token_file": str(write_admin_token(tmp_path)),
        "token_env": None,
        "sso": sso,
        **admin_extra,
    }
    gw.settings = core_settings(tmp_path, upstream, admin=admin)
    return gw.start()


def test_an_issuer_spelled_with_a_final_slash_signs_people_in(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """Auth0 and others spell their issuer with a final "/": the discovery document and the
    ID token's ``iss`` carry it, and both must equal the configured issuer exactly. The
    setting keeps it as written (it was stripped, so every sign-in failed), and the discovery
    URL drops it before the well-known path (OpenID Connect Discovery, section 4)."""
    idp = FakeIdP()
    idp.trailing_slash = True
    idp.start()
    assert idp.issuer.endswith("/")
    gw = _own_gateway(tmp_path, upstream, idp)
    try:
        name, token = World(gw, idp).sign_in()
        assert name == "sso", token
        status, _, me = gw.request("GET", "/admin/whoami", token=token)
        assert status == 200 and me["user"] == "liz@example.org", me
        assert idp.discoveries == 1
    finally:
        gw.stop()
        idp.stop()


def test_signing_out_can_end_the_session_at_the_provider_too(w: World) -> None:
    """``sign_out_at_provider`` (on in the module's gateway): the sign-out's answer names the
    provider's end-session page with our client id and the console to come back to
    (RP-Initiated Logout); following it, the provider ends its session and sends the browser
    to the console."""
    gw, idp = w.gw, w.idp
    _, token = w.sign_in()
    before = len(idp.sign_outs)
    status, _, answer = gw.request("POST", "/admin/console/sign-out", token=token)
    assert status == 200 and answer["ended"] is True, answer
    where = urlsplit(answer["provider"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == idp.base + "/logout"
    back = gw.url + "/console/"
    assert parse_qs(where.query) == {
        "client_id": [idp.client_id],
        "post_logout_redirect_uri": [back],
    }
    status, headers = fetch(answer["provider"])
    assert status == 302 and headers["Location"] == back
    assert idp.sign_outs[before:] == [
        {"client_id": idp.client_id, "post_logout_redirect_uri": back}
    ]
    assert gw.request("GET", "/admin/whoami", token=token)[0] == 401  # ended here as well


def test_without_the_switch_signing_out_names_no_provider_page(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    idp = FakeIdP().start()
    gw = _own_gateway(tmp_path, upstream, idp)
    try:
        _, token = World(gw, idp).sign_in()
        status, _, answer = gw.request("POST", "/admin/console/sign-out", token=token)
        assert status == 200 and answer == {"ended": True}
        assert idp.sign_outs == []
    finally:
        gw.stop()
        idp.stop()


def test_no_sign_in_starts_or_finishes_outside_the_admin_networks(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``admin.networks``: from elsewhere a session could not be used, so none is begun — the
    login and the callback send the browser back with ``address_not_allowed``, the provider is
    never called, and nothing is recorded as a sign-in."""
    idp = FakeIdP().start()
    gw = _own_gateway(tmp_path, upstream, idp, networks=["10.0.0.0/8"])  # tests: 127.0.0.1
    try:
        for route in ("/console/sso/login", "/console/sso/callback?code=c&state=s"):
            status, headers = fetch(gw.url + route)
            assert status == 303, (route, status)
            assert headers["Location"] == "/console/#sso_error=address_not_allowed"
            assert headers.get("Set-Cookie") is None  # no flow begun
        assert idp.discoveries == 0 and idp.token_calls == []  # the provider never called
    finally:
        gw.stop()
        idp.stop()


def test_a_flood_of_junk_codes_reaches_the_provider_only_so_many_at_a_time(w: World) -> None:
    """The sign-in routes need no credential and a state cookie is free: code exchanges are
    bounded (gateway.sso.EXCHANGES_IN_FLIGHT), so the gateway cannot be turned on the provider."""
    from concurrent.futures import ThreadPoolExecutor

    from gateway.sso import EXCHANGES_IN_FLIGHT

    def junk() -> str:
        status, headers = fetch(w.gw.url + "/console/sso/login")
        assert status == 302
        cookie = "pcs_sso=" + SimpleCookie(headers["Set-Cookie"])["pcs_sso"].value
        state = parse_qs(urlsplit(headers["Location"]).query)["state"][0]
        _, back = fetch(f"{w.gw.url}/console/sso/callback?code=junk&state={state}", cookie)
        return str(back["Location"])

    w.idp.token_delay_s, w.idp.most_in_flight = 0.5, 0
    try:
        with ThreadPoolExecutor(24) as pool:
            outcomes = list(pool.map(lambda _: junk(), range(24)))
    finally:
        w.idp.token_delay_s = 0.0
    assert set(outcomes) == {"/console/#sso_error=invalid_grant"}
    assert w.idp.most_in_flight == EXCHANGES_IN_FLIGHT < 24  # the flood reached the bound, no more


def test_the_login_redirect_carries_pkce_and_the_registered_redirect_uri(w: World) -> None:
    status, headers = fetch(w.gw.url + "/console/sso/login")
    assert status == 302
    q = parse_qs(urlsplit(headers["Location"]).query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["redirect_uri"] == [w.gw.url + "/console/sso/callback"]
    assert q["scope"] == ["openid email profile"] and q["state"] and q["nonce"]


@pytest.mark.parametrize(
    ("sso", "message"),
    [
        ({"issuer": "http://idp.example.org"}, "https"),
        ({"roles": {"g": ["superuser"]}}, "admin, auditor"),
        ({"client_secret_file": None, "client_secret_env": None}, "client_secret"),
        ({"jurisdiction": "XX"}, "jurisdiction"),
        ({"scopes": ["email"]}, "openid"),
        ({"roles": {"g": ["staff"]}}, "set self_service"),
        ({"self_service": {"models": ["no/slash"]}}, "models"),
        ({"self_service": {"expires_in_days": 0}}, "expires_in_days"),
        ({"self_service": {"networks": ["nowhere"]}}, "networks"),
    ],
)
def test_a_bad_sso_configuration_is_refused_at_start(sso: dict[str, Any], message: str) -> None:
    base = {
        "issuer": "https://idp.example.org",
        "client_id": "c",
        "client_secret_env": "IDP_SECRET",
        "public_url": "https://gw.example.org",
        "roles": {"g": ["auditor"]},
        "jurisdiction": "AU",
    }
    raw = {"admin": {"sso": {**base, **sso}}}
    with pytest.raises(ValueError, match=message):
        Settings.model_validate(raw)


@pytest.mark.slow
@pytest.mark.browser
def test_a_person_signs_in_from_the_console_page_in_a_real_browser(w: World) -> None:
    """Chromium clicks "Sign in with single sign-on", follows the provider and back, and lands
    signed in as the person; the session is in the tab's storage, not in the address bar, and
    no Content-Security-Policy violation or script error occurs."""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser_cors import ARGS, CHROMIUM
    from tests.support.browser import watched_page

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = watched_page(browser, problems)
        page.goto(w.gw.url + "/console/")
        page.click("#sso-login")
        expect(page.locator("#whoami")).to_contain_text("sso:liz@example.org (auditor")
        assert page.url == w.gw.url + "/console/"  # the fragment is gone from the address bar
        assert page.evaluate("sessionStorage.length") == 1
        expect(page.locator("#nav button[data-view=audit]")).to_be_visible()
        expect(page.locator("#nav button[data-view=keys]")).to_be_hidden()
        session = page.evaluate("Object.values(sessionStorage)[0]")
        ended_at_provider = len(w.idp.sign_outs)
        # sign_out_at_provider: to the provider's end-session page, and back to the console.
        # The page is at /console/ before the click too, so the test waits for the next
        # navigation (the provider's redirect back) to load, not merely for the address.
        with page.expect_navigation(url=w.gw.url + "/console/", wait_until="load"):
            page.click("#signout")
        expect(page.locator("#signin-screen")).to_be_visible()
        assert len(w.idp.sign_outs) == ended_at_provider + 1
        # the session was ended at the gateway, not only forgotten by the tab
        assert w.gw.request("GET", "/admin/whoami", token=session)[0] == 401
        # someone the console refuses is told why
        w.idp.claims = {"email": "eve@example.org", "groups": ["staff"]}
        page.click("#sso-login")
        expect(page.locator("#status")).to_contain_text("no group given access")
        assert page.evaluate("sessionStorage.length") == 0
        # liz again; an administrator (another browser context) ends her sessions from the page
        w.idp.claims = {"email": "liz@example.org", "groups": ["compliance"]}
        page.click("#sso-login")
        expect(page.locator("#whoami")).to_contain_text("sso:liz@example.org")
        session = page.evaluate("Object.values(sessionStorage)[0]")
        admin = browser.new_page()
        admin.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        admin.goto(w.gw.url + "/console/")
        admin.fill("#credential", RunningGateway.ADMIN_TOKEN)
        admin.click("#signin button[type=submit]")
        admin.click("#nav button[data-view=keys]")
        admin.fill("#se-user", "liz@example.org")
        admin.click("#sessions-end button[type=submit]")
        expect(admin.locator("#status")).to_contain_text("has ended")
        assert w.gw.request("GET", "/admin/whoami", token=session)[0] == 401
        # a member of staff signs in, lands on their own keys, makes one, and revokes it
        page.evaluate("sessionStorage.clear()")  # the tab forgets the ended session
        page.goto(w.gw.url + "/console/")
        w.idp.claims = {"email": "sid@example.org", "groups": ["everyone"]}
        page.click("#sso-login")
        expect(page.locator("#whoami")).to_contain_text("sso:sid@example.org (staff")
        expect(page.locator("#view-mykeys")).to_be_visible()
        expect(page.locator("#nav button[data-view=audit]")).to_be_hidden()
        page.fill("#mk-description", "laptop")
        page.click("#mykey-create button[type=submit]")
        expect(page.locator("#new-key")).to_contain_text("pcs_")
        key = page.locator("#new-key").inner_text().strip()
        row = page.locator("#mykeys-table tr.mykey-row", has_text="laptop")
        expect(row).to_contain_text("0.00 of 5.00")
        expect(page.locator("#mykeys-count")).to_contain_text("of at most 2")
        expect(page.locator("#mykeys-count")).to_contain_text("spent 0.00 of your 10.00")
        import openai

        sdk = openai.OpenAI(base_url=w.gw.base_url, api_key=key, max_retries=0)
        hi = [{"role": "user", "content": "hi"}]
        assert sdk.chat.completions.create(model="gpt-test", messages=hi).choices
        page.click("#dismiss-key")
        assert key not in page.content()
        row.locator("button.usage").click()  # where their key stands now
        expect(page.locator("#status")).to_contain_text("0 in flight")
        expect(page.locator("#status")).to_contain_text("key budget:")
        page.once("dialog", lambda d: d.accept())
        row.locator("button.revoke").click()
        expect(page.locator("#status")).to_contain_text("revoked")
        expect(row).to_have_count(0)
        with pytest.raises(openai.AuthenticationError):
            sdk.chat.completions.create(model="gpt-test", messages=hi)
        browser.close()
    assert problems == []


def test_keys_cannot_take_the_sessions_prefix() -> None:
    with pytest.raises(ValueError, match="console sessions"):
        Settings.model_validate({"keys": {"prefix": "pcc"}})


def test_staff_make_and_revoke_keys_of_their_own_and_nothing_else(
    w: World, upstream: FakeUpstream
) -> None:
    import openai

    gw = w.gw
    w.idp.claims = {"email": "sam@example.org", "groups": ["everyone"],
                    "jurisdiction": "AU-VIC", "department": "legal"}  # fmt: skip
    kind, session = w.sign_in()
    assert kind == "sso", session
    status, _, me = gw.request("GET", "/admin/whoami", token=session)
    assert status == 200 and me["roles"] == ["staff"], me
    assert me["can"] == {
        "keys": False, "config": False, "audit": False, "policy": False, "my_keys": True,
    }  # fmt: skip
    for method, path in (("GET", "/admin/keys"), ("GET", "/admin/audit/entries"),
                         ("GET", "/admin/config"), ("GET", "/admin/budgets"),
                         ("POST", "/admin/policy/eval")):  # fmt: skip
        assert gw.request(method, path, token=session)[0] == 403, path

    status, _, made = gw.request("POST", "/admin/me/keys", {"description": "laptop"}, token=session)
    assert status == 201, made
    assert (made["user"], made["jurisdiction"], made["sector"], made["team"]) == (
        "sam@example.org", "AU-VIC", "government", "legal",
    )  # fmt: skip
    assert made["roles"] == [] and made["tags"] == ["self-service"]
    assert made["models"] == ["gpt-test"] and made["budget_usd"] == 5.0
    assert made["budget_period"] == "week"  # admin.sso.self_service.budget_period
    assert made["networks"] == ["127.0.0.0/8"]
    left = parse_utc(made["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29, hours=23) < left <= timedelta(days=30)
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=made["key"], max_retries=0)
    assert sdk.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(openai.NotFoundError):  # the configured models only
        sdk.embeddings.create(model="emb-test", input="x")

    status, _, mine = gw.request("GET", "/admin/me/keys", token=session)
    assert status == 200 and [k["key_id"] for k in mine["data"]] == [made["key_id"]]
    budget, person = mine["data"][0]["budget"], mine["person_budget"]
    assert (budget["limit_usd"], budget["spent_usd"], budget["remaining_usd"]) == (5.0, 0.0, 5.0)
    # in the key's own period (self_service.budget_period: week), not the gateway's month
    week = datetime.now(UTC).isocalendar()
    assert budget["period"] == f"{week.year}-W{week.week:02d}", budget
    assert "key" not in mine["data"][0] and mine["max_keys"] == 2
    assert (person["limit_usd"], person["spent_usd"]) == (10.0, 0.0)  # across their keys
    assert person["period"] == mine["period"] == datetime.now(UTC).strftime("%Y-%m")
    # where their key stands now: its limits and the budgets it is held to, each in its period
    status, _, usage = gw.request("GET", f"/admin/me/keys/{made['key_id']}/usage", token=session)
    assert status == 200 and usage["limits"]["in_flight"] == 0, usage
    assert [(b["scope"], b["period"]) for b in usage["budgets"]] == [
        ("key", budget["period"]),
        ("user", mine["period"]),
    ]
    second = gw.request("POST", "/admin/me/keys", token=session)
    assert second[0] == 201
    status, _, full = gw.request("POST", "/admin/me/keys", token=session)
    assert status == 409 and "revoke one first" in full["error"]["message"]

    # a key an administrator made for the same person is not theirs to revoke here
    admin_made = gw.create_key(user="sam@example.org", jurisdiction="AU", sector="government")
    admin_id = admin_made.split("_")[1]
    assert gw.request("DELETE", f"/admin/me/keys/{admin_id}", token=session)[0] == 404
    assert gw.request("GET", f"/admin/me/keys/{admin_id}/usage", token=session)[0] == 404
    # revoking one of theirs: it stops working, and the slot is free again
    status, _, gone = gw.request("DELETE", f"/admin/me/keys/{made['key_id']}", token=session)
    assert status == 200 and gone == {"key_id": made["key_id"], "revoked": True}
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert gw.request("POST", "/admin/me/keys", token=session)[0] == 201

    # someone else sees none of them and cannot revoke them
    w.idp.claims = {"email": "ann@example.org", "groups": ["everyone"], "org": "agency"}
    _, other = w.sign_in()
    assert gw.request("GET", "/admin/me/keys", token=other)[2]["data"] == []
    status, _, hers = gw.request("POST", "/admin/me/keys", token=other)
    assert status == 201 and hers["tenant"] == "agency" and made["tenant"] == "default"
    assert gw.request("DELETE", f"/admin/me/keys/{second[2]['key_id']}", token=other)[0] == 404
    # a key cannot make keys this way, whatever its roles; nor can the shared admin token
    holder = gw.create_key(user="bot", jurisdiction="AU", sector="private", roles=["staff"])
    for token in (holder, RunningGateway.ADMIN_TOKEN):
        status, _, err = gw.request("POST", "/admin/me/keys", token=token)
        assert status == 403 and "console session" in err["error"]["message"], err
    assert gw.request("POST", "/admin/me/keys", token=second[2]["key"])[0] == 403  # no role
    # every key made or revoked is on the record under the person's name
    ops = [
        e["action"]["op"] for e in w.entries("key")
        if e.get("actor") == "sso:sam@example.org"
    ]  # fmt: skip
    assert ops == ["create", "create", "revoke", "create"]
    # sam leaves: an administrator ends their sessions and revokes every key in their name
    status, _, out = gw.request(
        "POST", "/admin/console/sessions/end",
        {"user": "sam@example.org", "revoke_keys": True}, token=RunningGateway.ADMIN_TOKEN,
    )  # fmt: skip
    assert status == 200 and len(out["revoked"]) == 3, out  # two of their own, the admin's one
    assert admin_id in out["revoked"]
    assert gw.request("GET", "/admin/whoami", token=session)[0] == 401
    for key in (second[2]["key"], admin_made):
        assert gw.request("GET", "/v1/models", token=key)[0] == 401
    status, _, err = gw.request(
        "POST", "/admin/console/sessions/end", {"user": "sam@example.org", "revoke_keys": "yes"},
        token=RunningGateway.ADMIN_TOKEN,
    )  # fmt: skip
    assert status == 400 and err["error"]["param"] == "user"
