"""The web console's page and the admin routes it uses (``/admin/whoami``,
``/admin/audit/entries``, ``/admin/audit/verify``, ``/admin/policy/eval``): the real embedded
policy, the real SQLite audit trail, requests through the openai SDK. The browser itself drives
the page in ``test_console_browser.py`` (slow tier)."""

from __future__ import annotations

import http.client
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOKEN = RunningGateway.ADMIN_TOKEN


class Site:
    def __init__(self, gw: RunningGateway, tmp: Path) -> None:
        self.gw, self.tmp = gw, tmp
        self.ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        self.cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
        self.kim = gw.create_key(user="kim", team="seoul", jurisdiction="KR", sector="private")
        # a compliance officer for Korea, and one for Australia
        self.kr_auditor = gw.create_key(
            user="min", jurisdiction="KR", sector="private", roles=["auditor"]
        )
        self.au_auditor = gw.create_key(
            user="liz", jurisdiction="AU", sector="private", roles=["auditor"]
        )

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, dict[str, str], Any]:
        return self.gw.request("GET", path, token=token)


PROMPT = "hi, the tangerine report"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, upstream_server: FakeUpstream) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console")
    settings = Settings.model_validate(deepseek_pair(tmp, upstream_server))
    gw = RunningGateway(settings, Components(pii_disabled=True)).start()
    s = Site(gw, tmp)

    def ask(key: str) -> None:
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": PROMPT}]
        )

    ask(s.ann)
    ask(s.ann)
    ask(s.kim)
    with pytest.raises(openai.PermissionDeniedError):
        ask(s.cat)  # PSPF Direction 001-2025
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the completion records land after the answers
        _, _, body = s.get("/admin/audit/entries?kind=complete&limit=10")
        if len(body["data"]) >= 4:
            break
        time.sleep(0.05)
    yield s
    gw.stop()


def test_the_page_is_served_with_a_strict_content_security_policy(site: Site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.gw.port, timeout=10)
    conn.request("GET", "/console")
    answer = conn.getresponse()
    assert answer.status == 308 and answer.headers["location"] == "/console/"  # for relative URLs
    conn.close()
    status, headers, page = site.gw.request("GET", "/console/", parse=False)
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    for part in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert b'src="console.js"' in page and b"<script>" not in page  # no inline script
    for name, media in (("console.js", "text/javascript"), ("console.css", "text/css")):
        status, headers, _ = site.gw.request("GET", f"/console/{name}", parse=False)
        assert status == 200 and headers["content-type"].startswith(media)
        assert "content-security-policy" in headers
    for name in ("../gateway/config/core.py", "%2e%2e%2fpyproject.toml", "index.htm", "x.js"):
        status, _, body = site.gw.request("GET", f"/console/{name}")
        assert status == 404 and body["error"]["type"] == "invalid_request_error", name


def test_the_console_can_be_switched_off(tmp_path: Path, upstream: FakeUpstream) -> None:
    raw = deepseek_pair(tmp_path, upstream)
    raw["admin"]["console"] = False
    gw = RunningGateway(Settings.model_validate(raw), Components(pii_disabled=True)).start()
    try:
        status, _, body = gw.request("GET", "/console/")
        assert status == 404 and "error" in body
        assert gw.request("GET", "/admin/whoami", token=TOKEN)[0] == 200  # the API stays
    finally:
        gw.stop()


def test_whoami_says_what_each_credential_may_use(site: Site) -> None:
    status, _, me = site.get("/admin/whoami")
    assert status == 200
    assert me["actor"] == "admin-token" and me["roles"] == ["admin"]
    assert me["can"] == {
        "keys": True, "config": True, "audit": True, "policy": True, "my_keys": False,
    }  # fmt: skip

    status, _, me = site.get("/admin/whoami", token=site.kr_auditor)
    assert status == 200 and me["actor"].startswith("key:")
    assert (me["user"], me["jurisdiction"], me["roles"]) == ("min", "KR", ["auditor"])
    assert me["can"] == {
        "keys": False, "config": False, "audit": True, "policy": True, "my_keys": False,
    }  # fmt: skip

    # an admin key without the auditor role manages keys but does not read the trail
    admin = site.gw.create_key(user="ops", jurisdiction="AU", sector="private", roles=["admin"])
    status, _, me = site.get("/admin/whoami", token=admin)
    assert me["can"] == {
        "keys": True, "config": True, "audit": False, "policy": True, "my_keys": False,
    }  # fmt: skip
    assert site.get("/admin/audit/entries", token=admin)[0] == 403  # as whoami said

    status, _, body = site.get("/admin/whoami", token=site.ann)  # staff: neither role
    assert status == 403 and "'admin' or 'auditor'" in body["error"]["message"]
    assert site.get("/admin/whoami", token=None)[0] == 401
    assert site.get("/admin/whoami", token="pcs_" + "x" * 40)[0] == 401
    # the staff key's attempt is on the record, naming both roles
    _, _, page = site.get("/admin/audit/entries?kind=access")
    refusal = page["data"][0]["entry"]["action"]
    assert refusal["handler"] == "whoami" and refusal["needs"] == "admin+auditor+staff"


def test_entries_come_newest_first_in_pages_and_browsing_is_on_the_record(site: Site) -> None:
    status, _, first = site.get("/admin/audit/entries?kind=intent,complete&limit=3")
    assert status == 200, first
    seqs = [e["seq"] for e in first["data"]]
    assert len(seqs) == 3 and seqs == sorted(seqs, reverse=True)
    assert first["next_before"] == seqs[-1]
    _, _, older = site.get(f"/admin/audit/entries?kind=intent,complete&limit=3&before={seqs[-1]}")
    assert all(e["seq"] < seqs[-1] for e in older["data"])
    row = first["data"][0]
    assert len(row["leaf_hash"]) == 64 and row["purged"] is False
    # no content: the prompt's words are nowhere in it (a word that cannot occur in an id or a
    # digest by chance; "hi" once did, in a random request id)
    assert row["entry"]["kind"] in ("intent", "complete") and "tangerine" not in str(row["entry"])
    # every page read is itself an entry: who, which filter, which scope
    _, _, reads = site.get("/admin/audit/entries?kind=export&limit=1")
    action = reads["data"][0]["entry"]["action"]
    assert action["phase"] == "browse" and action["filter_kinds"] == "intent+complete"
    assert action["limit"] == 1 or action["limit"] == 3


def test_entries_filter_by_decision_and_rule_and_are_scoped_to_the_auditor(site: Site) -> None:
    _, _, denied = site.get("/admin/audit/entries?decision=deny&kind=complete")
    (only,) = denied["data"]
    assert only["user"] == "cat" and only["jurisdiction"] == "AU" and only["decision"] == "deny"
    assert any(r.startswith("au.") for r in only["rules"]), only["rules"]
    _, _, by_rule = site.get(f"/admin/audit/entries?kind=complete&rule={only['rules'][0]}")
    assert [e["seq"] for e in by_rule["data"]] == [only["seq"]]

    # the Korean auditor sees Korea's requests only; the Australian one AU and AU-NSW
    _, _, kr = site.get("/admin/audit/entries?kind=complete", token=site.kr_auditor)
    assert {e["user"] for e in kr["data"]} == {"kim"}
    _, _, au = site.get("/admin/audit/entries?kind=complete", token=site.au_auditor)
    assert {e["user"] for e in au["data"]} == {"ann", "cat"}
    # a scope widened by tags: one more country, or every row
    wider = site.gw.create_key(
        user="ola", jurisdiction="AU", sector="private", roles=["auditor"], tags=["audit-scope:KR"]
    )
    _, _, au_kr = site.get("/admin/audit/entries?kind=complete", token=wider)
    assert {e["user"] for e in au_kr["data"]} == {"ann", "cat", "kim"}
    every = site.gw.create_key(
        user="uma", jurisdiction="NZ", sector="private", roles=["auditor"], tags=["audit-scope:all"]
    )
    _, _, all_rows = site.get("/admin/audit/entries?kind=complete", token=every)
    assert {e["user"] for e in all_rows["data"]} == {"ann", "cat", "kim"}
    # a jurisdiction outside the scope is not a way round it
    _, _, none = site.get(
        "/admin/audit/entries?kind=complete&jurisdiction=AU", token=site.kr_auditor
    )
    assert none["data"] == [] and none["next_before"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("before=-1", "before"),
        ("before=%D9%A3", "before"),  # an Arabic-Indic digit
        ("before=" + "9" * 5000, "before"),  # past int()'s digit limit: was a 500
        ("since=yesterday", "since"),
        ("user=a%00b", "user"),
        ("kind=secrets", "kind"),
        ("decision=maybe", "decision"),
        ("request_id=req%20one", "request_id"),
    ],
)
def test_entries_refuse_bad_queries_naming_the_parameter(
    site: Site, query: str, param: str
) -> None:
    status, _, body = site.get(f"/admin/audit/entries?{query}")
    assert status == 400, body
    assert body["error"]["param"] == param


def test_entries_need_an_auditor_or_the_admin_token(site: Site) -> None:
    assert site.get("/admin/audit/entries", token=site.ann)[0] == 403
    assert site.get("/admin/audit/entries", token=None)[0] == 401
    status, _, body = site.get("/admin/audit/entries?order=asc")
    assert status == 400 and "order" in body["error"]["message"]


def test_verify_reports_an_intact_trail_and_then_an_edited_entry(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    settings = Settings.model_validate(deepseek_pair(tmp_path, upstream))
    gw = RunningGateway(settings, Components(pii_disabled=True)).start()
    try:
        key = gw.create_key(user="ann", jurisdiction="AU-NSW", sector="private", roles=["auditor"])
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "x"}]
        )
        status, _, report = gw.request("GET", "/admin/audit/verify", token=key)
        assert status == 200, report
        assert report["ok"] is True and report["problems"] == [] and report["entries"] >= 2

        db = sqlite3.connect(tmp_path / "portcullis.db")
        with db:
            (seq,) = db.execute("SELECT max(seq) FROM audit_log WHERE kind='intent'").fetchone()
            db.execute(
                "UPDATE audit_log SET body = replace(body, 'deepseek-chat', 'deepseek-chaT') "
                "WHERE seq = ?",
                (seq,),
            )
        db.close()
        status, _, report = gw.request("GET", "/admin/audit/verify", token=TOKEN)
        assert status == 200 and report["ok"] is False
        assert f"entry {seq} does not match its leaf hash: edited" in report["problems"]
        staff = gw.create_key(user="bob", jurisdiction="AU", sector="private")
        assert gw.request("GET", "/admin/audit/verify", token=staff)[0] == 403
        # one verification of a store at a time (each reads the whole log in a child process)
        with ThreadPoolExecutor(2) as pool:
            both = list(
                pool.map(lambda _: gw.request("GET", "/admin/audit/verify", token=TOKEN), (1, 2))
            )
        assert sorted(status for status, _, _ in both) == [200, 409], both
    finally:
        gw.stop()


def _eval(site: Site, body: dict[str, Any], token: str = TOKEN) -> tuple[int, Any]:
    status, _, answer = site.gw.request("POST", "/admin/policy/eval", body, token=token)
    return status, answer


def test_what_if_denies_hosted_deepseek_to_australian_government_staff_with_the_citation(
    site: Site,
) -> None:
    status, body = _eval(
        site, {"jurisdiction": "AU", "sector": "government", "model": "deepseek-chat"}
    )
    assert status == 200, body
    decision = body["decision"]
    assert "deepseek-hosted" not in decision["permitted_backends"]
    reason = next(r for r in decision["reasons"] if r["effect"] == "deny")
    assert reason["citation"]["authority"] and reason["citation"]["instrument"]
    assert body["input"]["principal"]["jurisdiction"] == "AU"

    # a private company in New South Wales may use it; an auditor may ask too
    status, body = _eval(
        site,
        {"jurisdiction": "AU-NSW", "sector": "private", "model": "deepseek-chat"},
        token=site.au_auditor,
    )
    assert status == 200 and body["decision"]["allow"] is True
    assert "deepseek-hosted" in body["decision"]["permitted_backends"]


def test_what_if_with_pii_counts_says_what_happens_to_each_entity(site: Site) -> None:
    status, body = _eval(
        site,
        {"jurisdiction": "AU-NSW", "sector": "private", "model": "deepseek-chat",
         "pii": {"email_address": 2}},
    )  # fmt: skip
    assert status == 200, body
    assert body["input"]["phase"] == "final"
    hosted = body["decision"]["pii_actions"]["deepseek-hosted"]  # per entity, "*" for the rest
    assert hosted.get("EMAIL_ADDRESS", hosted.get("*")) == "pseudonymise"  # DESIGN axiom 6


def test_what_if_with_a_marking_denies_the_backends_not_accredited_for_it(site: Site) -> None:
    principal = {"jurisdiction": "AU-NSW", "sector": "private", "model": "deepseek-chat"}
    status, body = _eval(site, {**principal, "marking": "secret"})
    assert status == 200, body
    assert body["input"]["request"]["marking"] == "secret"
    denial = next(r for r in body["decision"]["reasons"] if r["effect"] == "deny")
    assert denial["rule"] == "portcullis.marking.above_accreditation"
    assert body["decision"]["permitted_backends"] == []  # none is accredited to secret here
    status, body = _eval(site, {**principal, "marking": "cosmic"})
    assert status == 400 and body["error"]["param"] == "marking"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"jurisdiction": "XX", "sector": "private"}, "jurisdiction"),
        ({"jurisdiction": 7, "sector": "private"}, "jurisdiction"),
        ({"sector": "private"}, "jurisdiction"),
        ({"jurisdiction": "AU", "sector": ["private"]}, "sector"),
        ({"jurisdiction": "AU", "sector": "pirates"}, "sector"),
        ({"jurisdiction": "AU", "sector": "private", "model": "gpt-9"}, "model"),
        ({"jurisdiction": "AU", "sector": "private", "backends": ["nowhere"]}, "backends"),
        ({"jurisdiction": "AU", "sector": "private", "roles": "admin"}, "roles"),
        ({"jurisdiction": "AU", "sector": "private", "pii": {"EMAIL": -1}}, "pii"),
        ({"jurisdiction": "AU", "sector": "private", "pii": {"<script>": 1}}, "pii"),
        ({"jurisdiction": "AU", "sector": "private", "at": "soon"}, "at"),
        ({"jurisdiction": "AU", "sector": "private", "team": 7}, "team"),
    ],
)
def test_what_if_refuses_bad_input_naming_the_field(
    site: Site, body: dict[str, Any], param: str
) -> None:
    status, answer = _eval(site, body)
    assert status == 400, answer
    assert answer["error"]["param"] == param


def test_what_if_is_closed_to_staff_and_refuses_unknown_fields(site: Site) -> None:
    assert _eval(site, {"jurisdiction": "AU", "sector": "private"}, token=site.ann)[0] == 403
    status, body = _eval(site, {"jurisdiction": "AU", "sector": "private", "api_base": "x"})
    assert status == 400 and "api_base" in body["error"]["message"]


def _entries_of(site: Site, rid: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:  # the outcome entry lands after the answer
        _, _, page = site.get(f"/admin/audit/entries?request_id={rid}")
        if len(page["data"]) >= n or time.monotonic() > deadline:
            return list(page["data"])
        time.sleep(0.05)


@pytest.fixture
def own_site(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Site]:
    """A gateway of the test's own (its traffic would change the shared site's counts)."""
    settings = Settings.model_validate(deepseek_pair(tmp_path, upstream))
    gw = RunningGateway(settings, Components(pii_disabled=True)).start()
    yield Site(gw, tmp_path)
    gw.stop()


def test_one_requests_entries_are_found_by_its_request_id(own_site: Site) -> None:
    """A user quotes a request's x-request-id: its entries, and nothing else, in the console and
    in the export — a forwarded request's intent and outcome, a refusal's outcome alone."""
    site = own_site
    sdk = openai.OpenAI(base_url=site.gw.base_url, api_key=site.ann, max_retries=0)
    answer = sdk.chat.completions.with_raw_response.create(
        model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
    )
    rid = answer.headers["x-request-id"]
    entries = _entries_of(site, rid, 2)
    assert [e["kind"] for e in entries] == ["complete", "intent"]
    assert {e["request_id"] for e in entries} == {rid} and entries[0]["user"] == "ann"
    status, _, body = site.gw.request(
        "GET", f"/admin/audit/export?format=jsonl&request_id={rid}", token=TOKEN, parse=False
    )
    assert status == 200 and len(body.splitlines()) == 2 and rid.encode() in body

    sdk = openai.OpenAI(base_url=site.gw.base_url, api_key=site.cat, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
        )
    denied = refused.value.response.headers["x-request-id"]
    (only,) = _entries_of(site, denied, 1)  # nothing was forwarded: no intent
    assert (only["kind"], only["decision"], only["user"]) == ("complete", "deny", "cat")
    # scoped as ever: the Korean auditor does not see an Australian request by its id
    _, _, hidden = site.get(f"/admin/audit/entries?request_id={denied}", token=site.kr_auditor)
    assert hidden["data"] == []


TEMPLATES = "{{7*7}} ${jndi:ldap://127.0.0.1:1/a} {{ ''.__class__.__mro__[1] }} __import__('os')"


def test_no_admin_call_takes_a_hook_and_template_strings_stay_text(site: Site) -> None:
    """Reliability B-5 for the admin API and the console's fields: a hook, callback or setting
    in any admin write is a 400 naming it (the reloads take no body at all); template and eval
    strings in a key's description are kept and shown verbatim, never rendered; no process is
    started."""
    import psutil

    before = {c.pid for c in psutil.Process().children(recursive=True)}
    status, _, made = site.gw.request(
        "POST",
        "/admin/keys",
        {"user": "tpl", "jurisdiction": "AU", "sector": "private", "description": TEMPLATES},
        token=TOKEN,
    )
    assert status == 201 and made["description"] == TEMPLATES
    shown = site.get(f"/admin/keys/{made['key_id']}")[2]
    assert shown["description"] == TEMPLATES
    # the key itself is shown once; afterwards only its masked form
    assert made["masked"] == shown["masked"] == f"pcs_{made['key_id']}_…{made['key'][-4:]}"
    assert "key" not in shown
    hooks = {"success_callback": ["os.system"], "hooks": {"pre_call": "__import__('os').system"}}
    principal = {"jurisdiction": "AU", "sector": "private"}
    for method, path, base in (
        ("POST", "/admin/keys", {**principal, "user": "h"}),
        ("PATCH", f"/admin/keys/{made['key_id']}", {}),
        ("POST", f"/admin/keys/{made['key_id']}/rotate", {}),
        ("POST", "/admin/policy/eval", principal),
        ("POST", "/admin/config/reload", {}),
        ("POST", "/admin/policy/reload", {}),
    ):
        status, _, body = site.gw.request(method, path, {**base, **hooks}, token=TOKEN)
        assert status == 400, (path, body)
        assert (
            "hooks" in body["error"]["message"] or "success_callback" in body["error"]["message"]
        ), (path, body)
    status, _, body = site.gw.request(
        "POST", "/admin/policy/eval", {**principal, "team": "{{7*7}}"}, token=TOKEN
    )
    assert status == 400 and body["error"]["param"] == "team"
    assert {c.pid for c in psutil.Process().children(recursive=True)} <= before


def test_the_settings_that_weaken_enforcement_are_listed_for_an_auditor(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """``GET /admin/config/weakened``: none on the defaults; with PII reading of names off and
    shadow mode on, each named with what it means — to an auditor and the administrator, not
    to a staff key; ``GET /admin/config`` carries the same list."""
    raw = deepseek_pair(tmp_path, upstream)
    raw["pii"] = {"ner": False}
    raw["limits"] = {"shadow": True}
    gw = RunningGateway(Settings.model_validate(raw), Components(pii_disabled=True)).start()
    try:
        auditor = gw.create_key(user="liz", jurisdiction="AU", sector="private", roles=["auditor"])
        staff = gw.create_key(user="ann", jurisdiction="AU", sector="private")
        status, _, body = gw.request("GET", "/admin/config/weakened", token=auditor)
        assert status == 200, body
        assert [w["setting"] for w in body["data"]] == ["pii.ner: false", "limits.shadow: true"]
        assert "refuse nothing" in body["data"][1]["means"]
        assert gw.request("GET", "/admin/config/weakened", token=staff)[0] == 403
        config = gw.request("GET", "/admin/config", token=gw.ADMIN_TOKEN)[2]
        assert config["weakened"] == body["data"]
    finally:
        gw.stop()
    (tmp_path / "plain").mkdir()
    plain = RunningGateway(
        Settings.model_validate(deepseek_pair(tmp_path / "plain", upstream)),
        Components(pii_disabled=True),
    ).start()
    try:
        assert plain.request("GET", "/admin/config/weakened", token=plain.ADMIN_TOKEN)[2] == {
            "object": "list",
            "data": [],
        }
    finally:
        plain.stop()
