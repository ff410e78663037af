"""The transfers register end to end (``GET /admin/audit/transfers``, ``portcullis audit
transfers``): the real embedded policy, the real PII guard (patterns) and the real SQLite audit
trail, requests through the openai SDK to two real HTTP upstreams: DeepSeek's hosted service in
China and the same weights on the organisation's own servers in Sydney. What each upstream
received is the evidence the register is held to."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.config import Settings
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOKEN = RunningGateway.ADMIN_TOKEN
EMAIL = "grace.hopper@example.org"
TFN = "123 456 782"  # an Australian tax file number with a valid check digit


@pytest.fixture
def sydney() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def _ask(gw: RunningGateway, key: str) -> Any:
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    return sdk.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": f"Write to {EMAIL} about TFN {TFN}."}],
    )


def test_the_register_says_where_each_request_went_and_what_protected_its_personal_data(
    tmp_path: Path, upstream: FakeUpstream, sydney: FakeUpstream
) -> None:
    raw = deepseek_pair(tmp_path, upstream)
    raw["pii"] = {"ner": False}
    raw["backends"][1]["base_url"] = sydney.base_url  # the self-hosted weights, in Sydney
    gw = RunningGateway(Settings.model_validate(raw)).start()
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
        _ask(gw, ann)
        _ask(gw, ann)
        # DeepSeek's service fails after taking the request: the gateway sends it on to Sydney
        upstream.mode, upstream.error_status = "error", 503
        _ask(gw, ann)
        upstream.mode = "normal"
        with pytest.raises(openai.PermissionDeniedError):
            _ask(gw, cat)  # the government's staff may not use it: nothing sent, no transfer
        outcomes = settled_entries(tmp_path, "complete")
        assert len(outcomes) == 4

        status, _, body = gw.request(
            "GET",
            "/admin/audit/transfers?by=jurisdiction,operator,hosting_country,cross_border",
            token=TOKEN,
        )
        assert status == 200, body
        rows = {(g["operator"], g["hosting_country"]): g for g in body["groups"]}
        assert set(rows) == {("deepseek", "CN"), ("self", "AU")}
        china, home = rows[("deepseek", "CN")], rows[("self", "AU")]
        # what DeepSeek's service received: three requests (the third failed there), each with
        # the e-mail address and the tax file number replaced; the register counts all three
        # under it, two of them answered, and the third under Sydney too, which answered it
        assert len(upstream.received) >= 3
        sent_cn = json.dumps([r["json"] for r in upstream.received])
        assert EMAIL not in sent_cn and TFN not in sent_cn
        assert (china["jurisdiction"], china["cross_border"]) == ("AU-NSW", "true")
        assert (china["requests"], china["answered"], china["with_personal_data"]) == (3, 2, 3)
        assert china["sent_as_is"] == 0 and china["protected"] == 6
        assert china["entities"] == {
            "AU_TFN": {"pseudonymise": 3},
            "EMAIL_ADDRESS": {"pseudonymise": 3},
        }
        # what Sydney received, and how the register says it was protected
        (got,) = sydney.received
        sent_au = json.dumps(got["json"])
        (entry,) = [o for o in outcomes if o["backend"] and o["backend"]["id"] == "deepseek-self"]
        assert (home["cross_border"], home["requests"], home["answered"]) == ("false", 1, 1)
        assert home["entities"] == {
            t: dict(sorted(a.items())) for t, a in sorted(entry["pii"]["actions"].items())
        }
        assert home["sent_as_is"] == sum(a.get("allow", 0) for a in home["entities"].values())
        # Sydney is the organisation's own: policy let both values go as written
        assert home["entities"] == {"AU_TFN": {"allow": 1}, "EMAIL_ADDRESS": {"allow": 1}}
        assert home["sent_as_is"] == 2 and EMAIL in sent_au and TFN in sent_au
        # the denial is not a transfer; the fallback reached two backends
        assert (body["totals"]["requests"], body["totals"]["answered"]) == (4, 3)

        # the command line reads the same register
        cfg = tmp_path / "cli.yaml"
        cfg.write_text(f"data_dir: {tmp_path}\n")
        by = ["--by", "jurisdiction,operator,hosting_country,cross_border"]
        done = CliRunner().invoke(
            cli, ["-c", str(cfg), "audit", "transfers", *by, "--format", "json"]
        )
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["groups"] == body["groups"]
        table = CliRunner().invoke(cli, ["-c", str(cfg), "audit", "transfers"])
        assert table.exit_code == 0, table.output
        lines = table.output.splitlines()
        assert lines[0].split("\t")[:5] == [
            "jurisdiction", "operator", "hosting_country", "self_hosted", "requests"]  # fmt: skip
        assert lines[-1].startswith("total\t") and "EMAIL_ADDRESS" in lines[-1]
        # every measure of the JSON report is a column of the table
        measures = [k for k in body["totals"] if k != "entities"]
        assert set(measures) <= set(lines[0].split("\t")), lines[0]
        # the same table as a CSV download (the console's button): the rows the command line
        # prints, every cell quoted
        status, headers, csv_body = gw.request(
            "GET", "/admin/audit/transfers?format=csv", token=TOKEN, parse=False
        )
        assert status == 200 and headers["content-type"].startswith("text/csv")
        assert headers["content-disposition"].startswith(
            'attachment; filename="portcullis-transfers-'
        )
        assert headers["x-content-type-options"] == "nosniff"
        rows = list(csv.reader(io.StringIO(csv_body.decode())))
        assert rows == [line.split("\t") for line in lines]
        status, _, err = gw.request("GET", "/admin/audit/transfers?format=xml", token=TOKEN)
        assert status == 400 and err["error"]["param"] == "format"
        # a key without the auditor role may not read it
        assert gw.request("GET", "/admin/audit/transfers", token=cat)[0] == 403
    finally:
        gw.stop()
