"""The evidence pack (``portcullis audit evidence``, ``portcullis audit verify --evidence``): a
real gateway with the embedded policy and the SQLite trail, requests through the openai SDK,
then the pack written, checked offline, and found out when a file is changed, added or signed by
another key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from audit.checkpoint import Signer
from gateway.cli import cli
from gateway.config import Settings
from gateway.http.app import Components
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.trail import settled_entries
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e
TOKEN = RunningGateway.ADMIN_TOKEN


@pytest.fixture
def served(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[RunningGateway, Path]]:
    raw = deepseek_pair(tmp_path, upstream)
    (tmp_path / "gateway.yaml").write_text(json.dumps(raw))  # the file the command line reads
    gw = RunningGateway(
        Settings.model_validate(raw), Components(pii_disabled=True), room=False
    ).start()  # the configuration in force is the file's: the pack holds one
    ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
    cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
    for key in (ann, ann, cat):
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        try:
            sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.PermissionDeniedError:
            pass  # cat: Australia's government staff are refused the hosted service
    assert len(settled_entries(tmp_path, "complete")) == 3
    yield gw, tmp_path
    gw.stop()


def test_an_evidence_pack_holds_the_period_and_checks_offline(
    served: tuple[RunningGateway, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    gw, data_dir = served
    cfg = data_dir / "gateway.yaml"
    pack = tmp_path_factory.mktemp("evidence") / "q4"
    run = CliRunner()
    done = run.invoke(cli, ["-c", str(cfg), "audit", "evidence", "--out", str(pack),
                            "--since", "2026-01-01", "--actor", "jane.doe"])  # fmt: skip
    assert done.exit_code == 0, done.output
    said = json.loads(done.output)
    assert said["trail_verified"] is True
    names = sorted(p.name for p in pack.iterdir())
    kept = [n for n in names if n.startswith("policy-bundle-sha256-")]
    documents = [n for n in names if n.startswith("config-")]
    assert names == sorted([
        "MANIFEST.json", "README.txt", "configuration.json", "denials.json",
        "policy-bundle.tar.gz", "policy.json", "public_key.pem", "transfers.json",
        "trail.jsonl", "trail.jsonl.manifest.json", "usage.json", "verification.json", *kept,
        *documents,
    ])  # fmt: skip
    assert len(kept) == 1  # the bundle that decided, as the gateway kept it when it loaded it
    assert len(documents) == 1  # the configuration that decided, which is the one in force
    # what the reports say is what the gateway's own report routes say
    transfers = json.loads((pack / "transfers.json").read_text())
    by = ",".join(transfers["by"])
    _, _, live = gw.request("GET", f"/admin/audit/transfers?by={by}", token=TOKEN)
    assert transfers["groups"] == live["groups"] and transfers["totals"]["requests"] == 2
    denials = json.loads((pack / "denials.json").read_text())
    assert denials["totals"]["requests"] == 1
    assert {c["authority"] for g in denials["groups"] for c in g["citations"]} == {
        "Secretary of the Department of Home Affairs"
    }
    usage = json.loads((pack / "usage.json").read_text())
    assert usage["totals"]["requests"] == 3 and usage["totals"]["denied"] == 1
    # the decisions were made under the bundle and configuration in force now
    policy = json.loads((pack / "policy.json").read_text())
    assert [(s["bundle_revision"], s["requests"], s["bundle_file"]) for s in policy["seen"]] == [
        (policy["current"], 3, kept[0])
    ]
    archived = data_dir / "policy" / "bundles" / kept[0].removeprefix("policy-bundle-")
    assert (pack / kept[0]).read_bytes() == archived.read_bytes()
    assert kept[0] == "policy-bundle-" + policy["current"].replace(":", "-") + ".tar.gz"
    configuration = json.loads((pack / "configuration.json").read_text())
    assert [c["id"] for c in configuration["current"]["catalogue"]] == [
        "deepseek-hosted", "deepseek-self"]  # fmt: skip
    digest = configuration["current"]["config_hash"]
    assert [(s["config_hash"], s["requests"], s["config_file"]) for s in configuration["seen"]] == [
        (digest, 3, f"config-{digest}.json")
    ]
    assert configuration["current"]["config_file"] == documents[0] == f"config-{digest}.json"
    document = (pack / documents[0]).read_bytes()  # as the gateway kept it when it started
    assert document == (data_dir / "config" / documents[0]).read_bytes()
    assert hashlib.sha256(document).hexdigest().startswith(digest)
    assert json.loads(document)["backends"][1]["id"] == "deepseek-self"
    assert json.loads((pack / "verification.json").read_text())["ok"] is True
    trail = (pack / "trail.jsonl").read_text().splitlines()
    assert len(trail) >= 6 and "hi" not in {json.loads(t).get("prompt") for t in trail}
    manifest = json.loads((pack / "MANIFEST.json").read_text())
    assert manifest["scope"]["actor"] == "jane.doe" and manifest["key_id"] == said["key_id"]
    assert set(manifest["files"]) == set(names) - {"MANIFEST.json"}

    key = str(pack / "public_key.pem")
    ok = run.invoke(cli, ["-c", str(cfg), "audit", "verify", "--evidence", str(pack),
                          "--public-key", key])  # fmt: skip
    assert ok.exit_code == 0 and ok.output.startswith("OK: 13 files"), ok.output
    # the pack is itself on the record: its export and each report, by jane.doe
    reads = [e for e in settled_entries(data_dir, "export") if e["actor"] == "jane.doe"]
    assert {e["action"].get("phase") for e in reads} >= {"usage", "transfers", "denials"}

    # a pack into a directory that is not empty is refused
    again = run.invoke(cli, ["-c", str(cfg), "audit", "evidence", "--out", str(pack)])
    assert again.exit_code != 0 and "not empty" in again.output

    # a changed report, an added file, another key: each found
    (pack / "denials.json").write_text('{"groups": []}\n')
    (pack / "extra.csv").write_text("x\n")
    bad = run.invoke(cli, ["-c", str(cfg), "audit", "verify", "--evidence", str(pack),
                           "--public-key", key, "--json"])  # fmt: skip
    assert bad.exit_code == 1
    problems = json.loads(bad.output)["problems"]
    assert "denials.json: changed since the pack was signed" in problems
    assert "extra.csv: not in the manifest" in problems
    other = pack.parent / "other.key"
    Signer.from_file(other)
    wrong = run.invoke(cli, ["-c", str(cfg), "audit", "verify", "--evidence", str(pack),
                             "--public-key", str(other), "--json"])  # fmt: skip
    assert wrong.exit_code == 1
    assert any("signature" in p for p in json.loads(wrong.output)["problems"])


def test_the_console_s_pack_is_a_zip_that_checks_offline_and_leaves_nothing_behind(
    served: tuple[RunningGateway, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    import io
    import zipfile

    gw, data_dir = served
    out = tmp_path_factory.mktemp("download")
    status, headers, body = gw.request(
        "GET", "/admin/audit/evidence?since=2026-01-01", token=TOKEN, parse=False
    )
    assert status == 200, body
    assert headers["content-type"] == "application/zip"
    assert headers["content-disposition"].startswith('attachment; filename="portcullis-evidence-')
    archive = out / "pack.zip"
    archive.write_bytes(body)
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    (folder,) = {n.split("/")[0] for n in names}
    assert folder.startswith("portcullis-evidence-") and f"{folder}/MANIFEST.json" in names
    assert len(names) == 14
    # built in the data directory's tmp/ and removed once sent
    assert list((data_dir / "tmp").iterdir()) == []
    cfg = data_dir / "gateway.yaml"
    key = str(data_dir / "audit" / "signing.pub")
    ok = CliRunner().invoke(
        cli, ["-c", str(cfg), "audit", "verify", "--evidence", str(archive), "--public-key", key]
    )
    assert ok.exit_code == 0 and ok.output.startswith("OK: 13 files"), ok.output
    # the verification ran in a child process and found the trail intact
    inside = zipfile.ZipFile(archive)
    assert json.loads(inside.read(f"{folder}/verification.json"))["ok"] is True

    # an auditor of Korea gets Korea's part: no request here
    kr = gw.create_key(user="kim", jurisdiction="KR", sector="government", roles=["auditor"])
    status, _, body = gw.request("GET", "/admin/audit/evidence", token=kr, parse=False)
    assert status == 200
    usage = json.loads(zipfile.ZipFile(io.BytesIO(body)).read(
        next(n for n in zipfile.ZipFile(io.BytesIO(body)).namelist() if n.endswith("/usage.json"))
    ))  # fmt: skip
    assert usage["totals"]["requests"] == 0
    # and no configuration document: it holds every jurisdiction's settings
    kr_names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert not any("/config-" in n for n in kr_names)
    assert any(n.endswith("/configuration.json") for n in kr_names)
    staff = gw.create_key(user="x", jurisdiction="AU", sector="private")
    assert gw.request("GET", "/admin/audit/evidence", token=staff)[0] == 403
    # one pack at a time: another asked while one is being built waits its turn
    from gateway.http import evidence_admin

    url = gw.app.state.services.audit.engine.url.render_as_string(hide_password=False)
    evidence_admin._BUILDING.add(url)
    try:
        status, _, busy = gw.request("GET", "/admin/audit/evidence", token=TOKEN)
        assert status == 409 and "being built" in busy["error"]["message"]
    finally:
        evidence_admin._BUILDING.discard(url)
    assert gw.request("GET", "/admin/audit/evidence?colour=red", token=TOKEN)[0] == 400

    # a ZIP that would write outside its folder is refused, not unpacked
    evil = out / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("pack/../../escape.txt", "x")
    bad = CliRunner().invoke(
        cli, ["-c", str(cfg), "audit", "verify", "--evidence", str(evil), "--public-key", key]
    )
    assert bad.exit_code == 1 and "not a file of the pack" in bad.output, bad.output
    assert not (out.parent / "escape.txt").exists()


def test_what_decided_a_request_is_read_by_its_ids(served: tuple[RunningGateway, Path]) -> None:
    """``GET /admin/audit/configurations/{config_hash}`` and ``/admin/audit/bundles/{revision}``:
    the configuration document and the policy bundle an entry names, as the gateway kept them."""
    gw, data_dir = served
    (entry, *_) = settled_entries(data_dir, "complete")
    digest, revision = entry["config_hash"], entry["bundle_revision"]
    status, headers, document = gw.request(
        "GET", f"/admin/audit/configurations/{digest}", token=TOKEN, parse=False
    )
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert document == (data_dir / "config" / f"config-{digest}.json").read_bytes()
    assert hashlib.sha256(document).hexdigest().startswith(digest)
    status, headers, bundle = gw.request(
        "GET", f"/admin/audit/bundles/{revision}", token=TOKEN, parse=False
    )
    assert status == 200 and headers["content-type"] == "application/gzip"
    kept = data_dir / "policy" / "bundles" / (revision.replace(":", "-") + ".tar.gz")
    assert bundle == kept.read_bytes()
    assert headers["content-disposition"] == f'attachment; filename="policy-bundle-{kept.name}"'
    # an unscoped auditor may read both; one scoped to Korea the bundle, not the configuration
    # (it holds every jurisdiction's settings); staff neither; a malformed id is a 400, one not
    # kept a 404
    everyone = gw.create_key(user="ida", jurisdiction="AU", sector="government",
                             roles=["auditor"], tags=["audit-scope:all"])  # fmt: skip
    assert gw.request("GET", f"/admin/audit/configurations/{digest}", token=everyone)[0] == 200
    auditor = gw.create_key(user="kim", jurisdiction="KR", sector="government", roles=["auditor"])
    assert gw.request("GET", f"/admin/audit/configurations/{digest}", token=auditor)[0] == 403
    assert gw.request("GET", f"/admin/audit/bundles/{revision}", token=auditor)[0] == 200
    staff = gw.create_key(user="x", jurisdiction="AU", sector="private")
    assert gw.request("GET", f"/admin/audit/bundles/{revision}", token=staff)[0] == 403
    for path, status in [
        ("/admin/audit/configurations/..%2F..%2Fsecret.key", 404),  # no such route
        ("/admin/audit/configurations/ABCDEF0123456789", 400),
        ("/admin/audit/configurations/0123456789abcdef", 404),
        ("/admin/audit/bundles/sha256:..", 400),
        ("/admin/audit/bundles/" + "sha256:" + "0" * 20, 404),
    ]:
        got, _, body = gw.request("GET", path, token=TOKEN)
        assert got == status, (path, body)
        assert body["error"]["code"] in ("invalid_parameter", "not_found"), body
