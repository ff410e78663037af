"""The web console in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real gateway: the embedded Rego policy, the SQLite audit trail, traffic through the
openai SDK to the fake upstream on 127.0.0.1. Every Content-Security-Policy violation or script
error on the page fails the test.

Slow tier (``PORTCULLIS_SLOW=1``; ``make test-slow`` installs Chromium where it is missing)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import deepseek_pair
from tests.e2e.test_browser_cors import ARGS, CHROMIUM
from tests.support.browser import watched_page
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow]
TOKEN = RunningGateway.ADMIN_TOKEN
ROOT = Path(__file__).resolve().parents[2]


def _ask(gw: RunningGateway, key: str) -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    return sdk.chat.completions.create(
        model="deepseek-chat", messages=[{"role": "user", "content": "private words"}]
    )


@pytest.fixture
def site(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[RunningGateway, str]]:
    cfg = deepseek_pair(tmp_path, upstream)
    cfg["system_prompts"] = {
        "staff_notice": {"text": "Mind the <b>rules</b>.", "on_leak": "redact"}
    }
    # ann is under legal hold: her requests are captured (read from the console below)
    cfg["policy"] = {"overlays": [str(ROOT / "policies/overlays/examples/legal_hold")]}
    cfg["audit"] = {"content_capture": True}
    cfg["budgets"] = {"shadow": True}  # a setting that weakens enforcement: the overview says so
    cfg["limits"] = {"teams": {"ops": {"requests_per_minute": 100, "max_parallel": 5}}}
    gw = RunningGateway(Settings.model_validate(cfg), Components(pii_disabled=True)).start()
    ann = gw.create_key(
        user="ann", team="ops", jurisdiction="AU-NSW", sector="private", tags=["legal-hold"]
    )
    cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
    kim = gw.create_key(user="kim", team="seoul", jurisdiction="KR", sector="private")
    auditor = gw.create_key(user="liz", jurisdiction="AU", sector="private", roles=["auditor"])
    _ask(gw, ann)
    _ask(gw, kim)
    with pytest.raises(openai.PermissionDeniedError):
        _ask(gw, cat)
    yield gw, auditor
    gw.stop()


def test_an_administrator_and_an_auditor_work_through_the_console(
    site: tuple[RunningGateway, str], upstream: FakeUpstream
) -> None:
    from playwright.sync_api import expect, sync_playwright

    gw, auditor = site
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = watched_page(browser, problems, accept_downloads=True)
        page.goto(gw.url + "/console")  # redirected to /console/
        assert page.url.endswith("/console/")

        # a wrong credential is refused and kept nowhere
        page.fill("#credential", "pcs_not_a_key")
        page.click("#signin button[type=submit]")
        expect(page.locator("#status")).to_have_text("The credential was refused.")
        assert page.evaluate("sessionStorage.length") == 0
        problems.clear()  # the browser logs the 401 itself; that is the point of this step

        # the administrator
        page.fill("#credential", TOKEN)
        page.click("#signin button[type=submit]")
        expect(page.locator("#whoami")).to_contain_text("admin-token")
        assert TOKEN not in page.content()  # never written into the page
        expect(page.locator("#nav button[data-view=keys]")).to_be_visible()

        # overview: readiness, what settings weaken, and an intact trail
        expect(page.locator("#readiness")).to_contain_text("database: ok")
        expect(page.locator("#overview-weakened")).to_contain_text("budgets.shadow: true")
        expect(page.locator("#overview-weakened")).to_contain_text("refuse nothing")
        page.click("#verify")
        expect(page.locator("#verify-result")).to_contain_text("intact")

        # the audit trail: the denial, its record, no content
        page.click("#nav button[data-view=audit]")
        expect(page.locator("#audit-table tr.audit-row").first).to_be_visible()
        page.select_option("#audit-filter [name=decision]", "deny")
        page.select_option("#audit-filter [name=kind]", "complete")
        page.click("#audit-filter button[type=submit]")
        rows = page.locator("#audit-table tr.audit-row")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("cat")
        rows.first.click()
        detail = page.locator("#audit-detail")
        expect(detail).to_contain_text('"decision"')
        assert "private words" not in detail.inner_text()  # the prompt was never stored
        expect(page.locator("#audit-detail-head")).to_contain_text("leaf hash")
        expect(page.locator("#audit-content")).to_be_hidden()  # cat's was not captured
        # what decided it: the configuration as the gateway kept it, and the policy bundle
        page.click("#audit-configuration")
        expect(page.locator("#audit-configuration-body")).to_contain_text('"deepseek-self"')
        with page.expect_download() as bundle:
            page.click("#audit-bundle")
        assert bundle.value.suggested_filename.startswith("policy-bundle-sha256-")
        assert Path(bundle.value.path()).read_bytes()[:2] == b"\x1f\x8b"  # gzip

        # ann's request was captured under legal hold: read on demand, shown as text
        page.select_option("#audit-filter [name=decision]", "allow")
        page.fill("#audit-filter [name=user]", "ann")
        page.click("#audit-filter button[type=submit]")
        expect(rows).to_have_count(1)
        rows.first.click()
        expect(page.locator("#audit-content-body")).to_be_hidden()
        page.click("#audit-content")
        expect(page.locator("#audit-content-body")).to_contain_text("private words")
        page.fill("#audit-filter [name=user]", "")
        page.select_option("#audit-filter [name=decision]", "deny")
        page.click("#audit-filter button[type=submit]")
        expect(page.locator("#audit-content-body")).to_be_hidden()

        # the same filter as a CSV download
        with page.expect_download() as download:
            page.click("#export-csv")
        saved = Path(download.value.path()).read_text()
        exported = list(csv.DictReader(io.StringIO(saved)))
        assert [r["user"] for r in exported] == ["cat"], saved[:300]
        expect(page.locator("#status")).to_contain_text("Saved")
        # the evidence pack of the same filter, a signed ZIP
        with page.expect_download() as download:
            page.click("#export-evidence")
        pack = zipfile.ZipFile(download.value.path())
        assert any(n.endswith("/MANIFEST.json") for n in pack.namelist())
        denied = json.loads(
            next(pack.read(n) for n in pack.namelist() if n.endswith("/usage.json"))
        )
        assert denied["totals"]["requests"] == denied["totals"]["denied"] == 1  # cat's, as filtered

        # a key made in the console works with the SDK, and is shown once
        page.click("#nav button[data-view=keys]")
        expect(page.locator("#keys-table tr.key-row").first).to_be_visible()
        form = page.locator("#key-create")
        form.locator("[name=user]").fill("dora")  # a name no hex key id or masked key can hold
        form.locator("[name=jurisdiction]").fill("AU-NSW")
        form.locator("[name=sector]").select_option("private")
        form.locator("[name=team]").fill("ops")
        form.locator("[name=budget_usd]").fill("25")
        form.locator("button[type=submit]").click()
        new_key = page.locator("#new-key")
        expect(new_key).to_contain_text("pcs_")
        key = new_key.inner_text().strip()
        sent = len(upstream.received)
        assert _ask(gw, key).choices[0].message.content
        assert len(upstream.received) == sent + 1
        page.click("#dismiss-key")
        expect(new_key).to_have_text("")
        assert key not in page.content()
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_have_count(1)
        # its spend budget, and what it spent of it (this backend has no price: nothing)
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_contain_text(
            "0.00 of 25.00"
        )
        budget = page.locator("#budgets-table tr.budget-row", has_text=key.split("_")[1])
        expect(budget).to_contain_text("25.00")
        # the limit team ops's keys share, and where it stands now
        team = page.locator("#limits-table tr.limit-row", has_text="ops")
        expect(team).to_contain_text("100 requests/min, 5 in flight")
        expect(team).to_contain_text("requests left, 0 of 5 in flight")
        expect(page.locator("#limits-note")).to_contain_text("this minute's buckets")  # window
        expect(page.locator("#budgets-period")).to_contain_text("renews at")
        # an administrator raises it from the row
        page.once("dialog", lambda d: d.accept("40"))
        page.locator("#keys-table tr.key-row", has_text="dora").locator("button.budget").click()
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_contain_text(
            "0.00 of 40.00"
        )
        # and renews it every week, on its own period
        page.once("dialog", lambda d: d.accept("40, week"))
        page.locator("#keys-table tr.key-row", has_text="dora").locator("button.budget").click()
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_contain_text(
            "0.00 of 40.00 per week"
        )
        expect(
            page.locator("#budgets-table tr.budget-row", has_text=key.split("_")[1])
        ).to_contain_text("period 20")
        page.once("dialog", lambda d: d.accept("40, fortnight"))  # refused in the page
        page.locator("#keys-table tr.key-row", has_text="dora").locator("button.budget").click()
        expect(page.locator("#status")).to_contain_text("optionally a period")
        # and keeps it to the office network, then lets it go anywhere again
        page.once("dialog", lambda d: d.accept("10.20.0.0/16, 2001:db8::/32"))
        page.locator("#keys-table tr.key-row", has_text="dora").locator("button.networks").click()
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_contain_text(
            "10.20.0.0/16, 2001:db8::/32"
        )
        with pytest.raises(openai.PermissionDeniedError):
            _ask(gw, key)  # the browser's tests run on 127.0.0.1, outside it
        page.once("dialog", lambda d: d.accept(""))
        page.locator("#keys-table tr.key-row", has_text="dora").locator("button.networks").click()
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_contain_text("anywhere")
        # its own limits, set from the row (the prompt starts from the current ones)
        row = page.locator("#keys-table tr.key-row", has_text="dora")
        expect(row).to_contain_text("default rpm, default tpm, default in flight")
        offered: list[str] = []

        def limits(dialog: Any) -> None:
            offered.append(dialog.default_value)
            dialog.accept("60, default, 2")

        page.once("dialog", limits)
        row.locator("button.limits").click()
        expect(row).to_contain_text("60 rpm, default tpm, 2 in flight")
        assert offered == ["default, default, default"]
        _, _, record = gw.request(
            "GET", f"/admin/keys/{key.split('_')[1]}", token=RunningGateway.ADMIN_TOKEN
        )
        assert (record["requests_per_minute"], record["max_parallel"]) == (60, 2)
        page.once("dialog", lambda d: d.accept("60, lots, 2"))  # refused in the page, unsent
        row.locator("button.limits").click()
        expect(page.locator("#status")).to_contain_text("Give three limits")
        # where it stands now: nothing in flight, the minute's requests left under its own 60
        row.locator("button.usage").click()
        expect(page.locator("#status")).to_contain_text("0 in flight of at most 2")
        expect(page.locator("#status")).to_contain_text("of 60 requests")
        # dora leaves: every key in their name revoked from the page
        page.fill("#uk-user", "dora")
        page.once("dialog", lambda d: d.accept())
        page.click("#user-keys-revoke button[type=submit]")
        expect(page.locator("#status")).to_contain_text("1 key(s) of dora revoked")
        expect(page.locator("#keys-table tr.key-row", has_text="dora")).to_have_count(0)
        with pytest.raises(openai.AuthenticationError):
            _ask(gw, key)

        # what-if: Australian government staff and the hosted DeepSeek service
        page.click("#nav button[data-view=policy]")
        pf = page.locator("#policy-form")
        pf.locator("[name=jurisdiction]").fill("AU")
        pf.locator("[name=sector]").select_option("government")
        pf.locator("[name=model]").fill("deepseek-chat")
        pf.locator("button[type=submit]").click()
        expect(page.locator("#policy-verdict")).to_have_text("DENIED")
        reason = page.locator("#policy-result li.reason").first
        expect(reason).to_contain_text("au.")
        expect(reason.locator(".citation")).not_to_be_empty()
        assert "null" not in page.locator("#policy-result").inner_text()  # no stray empty part
        # a private company's SECRET document: no backend here is accredited to it
        pf.locator("[name=sector]").select_option("private")
        pf.locator("[name=marking]").select_option("secret")
        pf.locator("button[type=submit]").click()
        expect(page.locator("#policy-result")).to_contain_text("portcullis.marking")
        expect(page.locator("#policy-verdict")).to_have_text("DENIED")

        # configuration: the catalogue as it runs
        page.click("#nav button[data-view=config]")
        expect(page.locator("#config-table")).to_contain_text("deepseek-hosted")
        expect(page.locator("#config-table")).to_contain_text("deepseek-self")
        prompt = page.locator("#prompts-table tbody tr")
        expect(prompt).to_have_count(1)
        expect(prompt).to_contain_text("staff_notice")
        expect(prompt).to_contain_text("redact")
        expect(prompt).to_contain_text("Mind the <b>rules</b>.")  # text, never markup

        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0

        # the auditor: no keys, no configuration, and only Australia's rows
        page.fill("#credential", auditor)
        page.click("#signin button[type=submit]")
        expect(page.locator("#whoami")).to_contain_text("auditor")
        expect(page.locator("#nav button[data-view=keys]")).to_be_hidden()
        expect(page.locator("#nav button[data-view=config]")).to_be_hidden()
        page.click("#nav button[data-view=audit]")
        page.select_option("#audit-filter [name=kind]", "complete")
        page.click("#audit-filter button[type=submit]")
        rows = page.locator("#audit-table tr.audit-row")
        expect(rows.first).to_be_visible()
        # until the filtered page has replaced the first one (whose rows include the auditor's
        # own page reads): a loaded machine showed the old page here
        expect(rows.filter(has_not_text="complete")).to_have_count(0)
        users = set(page.locator("#audit-table tr.audit-row td:nth-child(4)").all_inner_texts())
        assert users == {"ann", "cat", "dora"}, users  # not kim (KR)
        # the transfers register: ann's and dora's requests went to DeepSeek's service in China;
        # cat's was denied (nothing left) and kim's is not Australia's
        page.click("#nav button[data-view=transfers]")
        transfers = page.locator("#transfers-table tr.usage-row")
        expect(transfers).to_have_count(1)
        cells = transfers.first.locator("td").all_inner_texts()
        assert cells[:7] == ["AU-NSW", "deepseek", "CN", "false", "2", "2", "0"], cells
        expect(page.locator("#transfers-table tr.usage-total")).to_contain_text("Total")
        # the denials: cat's request, refused by both of Australia's rules, with the direction
        page.click("#nav button[data-view=denials]")
        refused = page.locator("#denials-table tr.usage-row")
        expect(refused).to_have_count(2)
        expect(refused.first).to_contain_text("PSPF Direction 001-2025")
        expect(page.locator("#denials-table tr.usage-total")).to_contain_text("Total")
        # and the same table as a CSV file
        with page.expect_download() as download:
            page.click("#denials-csv")
        table = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
        assert table[0][:3] == ["rule", "jurisdiction", "requests"], table
        assert len(table) == 4 and table[-1][0] == "total"  # two rules and the total
        assert "PSPF Direction 001-2025" in table[1][-1]
        browser.close()
    assert problems == [], problems
    # what the console did is on the record, under who did it
    _, _, page_reads = gw.request("GET", "/admin/audit/entries?kind=export&limit=100", token=TOKEN)
    actors = {e["entry"]["actor"] for e in page_reads["data"]}
    assert actors == {"admin-token", auditor.split("_")[1]}  # the reader's key id


def test_an_auditor_finds_a_person_s_data_and_the_value_stays_nowhere(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """The console's data-subject search: the value goes in a POST body, the form forgets it,
    and the answer says where the request went and what was done to the value there."""
    from playwright.sync_api import expect, sync_playwright

    tfn = "123 456 782"  # an Australian tax file number with a valid check digit
    cfg = deepseek_pair(tmp_path, upstream)
    cfg["pii"] = {"ner": False}
    gw = RunningGateway(Settings.model_validate(cfg)).start()
    problems: list[str] = []
    posted: list[str] = []
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        auditor = gw.create_key(user="liz", jurisdiction="AU", sector="private", roles=["auditor"])
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
        sdk.chat.completions.create(
            model="deepseek-chat", messages=[{"role": "user", "content": f"My TFN is {tfn}."}]
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = watched_page(browser, problems)
            page.on("request", lambda r: posted.append(f"{r.method} {r.url} {r.post_data}"))
            page.goto(gw.url + "/console/")
            page.fill("#credential", auditor)
            page.click("#signin button[type=submit]")
            expect(page.locator("#whoami")).to_contain_text("auditor")
            page.click("#nav button[data-view=subjects]")
            page.fill("#sf-value", "123456782")  # spelled without its spaces
            page.fill("#sf-type", "AU_TFN")
            page.click("#subjects-form button[type=submit]")
            rows = page.locator("#subjects-table tr.subject-row")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("ann (AU-NSW)")
            expect(rows.first).to_contain_text("AU_TFN")
            expect(rows.first).to_contain_text(
                "deepseek-hosted (deepseek, CN): AU_TFN pseudonymise"
            )
            expect(page.locator("#subjects-summary")).to_contain_text(
                "1 request(s) held the value, 1 of them sent"
            )
            assert page.input_value("#sf-value") == ""  # the form forgets the value
            # a type the gateway does not find: said, not a blank page
            page.fill("#sf-value", tfn)
            page.fill("#sf-type", "NOT_A_TYPE")
            page.click("#subjects-form button[type=submit]")
            expect(page.locator("#status")).to_contain_text("not a type the gateway finds")
            problems[:] = [p for p in problems if "400" not in p]  # the browser logs the 400
            browser.close()
    finally:
        gw.stop()
    assert problems == [], problems
    # the value went only in POST bodies to the search, never in a URL
    carrying = [p for p in posted if "123456782" in p or "123 456 782" in p]
    assert carrying and all(
        p.startswith("POST ") and "/admin/audit/subjects " in p for p in carrying
    )
