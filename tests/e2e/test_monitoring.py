"""The monitoring kit (deploy/prometheus/, deploy/grafana/) against the real gateway: every
metric and label its alert rules and dashboard name is one a running gateway exposes (scraped
from /metrics after allowed, refused and failing requests through the openai SDK); every query
parses; promtool (Prometheus's own) checks the rules, runs their unit tests and lints the
scrape; the state gauges follow the audit store and the backends' circuits."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import promql_parser
import pytest
import yaml

from gateway.config import Settings
from tests.e2e.conftest import deepseek_pair
from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "portcullis-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "portcullis-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "portcullis-dashboard.json"
# Grafana's variables, as Grafana substitutes them before the query reaches Prometheus
GRAFANA_VARS = {"$__rate_interval": "5m", "$instance": ".*", "${datasource}": ""}
# Prometheus's own series (the scrape's), not the gateway's
PROMETHEUS_SERIES = {"up"}
# Metrics that exist only with a feature on (tracing.endpoint): named by the rules all the same
OPTIONAL = {"portcullis_trace_spans_total"}
_SUFFIXES = ("_bucket", "_sum", "_count")


def _queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert rule and dashboard panel."""
    out = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            out.append((f"alert {rule['alert']}", rule["expr"]))
    dash = json.loads(DASHBOARD.read_text())
    variables = [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append((f"panel {panel['title']!r}", expr))
    # label_values(metric, label): the metric and label a variable lists
    for q in variables:
        metric, label = q.removeprefix("label_values(").removesuffix(")").split(", ")
        out.append((f"variable {q}", f"count by ({label}) ({metric})"))
    return out


def _walk(node: Any, found: list[tuple[str, set[str]]], grouping: set[str]) -> None:
    """The metric names selected and, per selector, the labels the query reads of it (its
    matchers, and the labels the aggregations above it group by)."""
    if isinstance(node, promql_parser.MatrixSelector):
        node = node.vector_selector
    if isinstance(node, promql_parser.VectorSelector):
        labels = {m.name for m in node.matchers.matchers} | grouping
        found.append((node.name, labels))
        return
    if isinstance(node, promql_parser.AggregateExpr):
        by = set(node.modifier.labels) if node.modifier is not None else set()
        _walk(node.expr, found, grouping | by)
        return
    if isinstance(node, promql_parser.BinaryExpr):
        _walk(node.lhs, found, grouping)
        _walk(node.rhs, found, grouping)
        return
    if isinstance(node, promql_parser.Call):
        for arg in node.args:
            _walk(arg, found, grouping)
        return
    for attr in ("expr",):  # ParenExpr, UnaryExpr, SubqueryExpr
        inner = getattr(node, attr, None)
        if inner is not None:
            _walk(inner, found, grouping)


def _exposed(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The scrape's families (name -> type) and, per sample name, the labels its samples have."""
    families: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = kind
        elif line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            name = name.split(" ")[0]
            seen = labels.setdefault(name, set())
            if rest:
                for pair in rest.rsplit("}", 1)[0].split('",'):
                    if "=" in pair:
                        seen.add(pair.split("=", 1)[0].strip(","))
    return families, labels


def _family(name: str, families: dict[str, str]) -> str | None:
    if name in families:
        return name
    for suffix in _SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and families.get(base) == "histogram":
            return base
    return None


@pytest.fixture
def scraped(tmp_path: Path, upstream: FakeUpstream) -> Iterator[tuple[RunningGateway, str]]:
    """A gateway with the real audit store, policy and PII guard, after an allowed request, a
    refusal and a backend failing until its circuit opened; and its /metrics."""
    raw = deepseek_pair(tmp_path, upstream)
    raw["pii"] = {"ner": False}
    raw["backends"][0]["circuit_failures"] = 1
    raw["backends"][0]["circuit_cooldown_s"] = 60
    raw["backends"][0]["max_retries"] = 0
    gw = RunningGateway(Settings.model_validate(raw)).start()
    try:
        ann = gw.create_key(user="ann", team="ops", jurisdiction="AU-NSW", sector="private")
        cat = gw.create_key(user="cat", team="gov", jurisdiction="AU", sector="government")
        sdk = openai.OpenAI(base_url=gw.base_url, api_key=ann, max_retries=0)
        messages = [{"role": "user", "content": "Write to grace.hopper@example.org"}]
        assert sdk.chat.completions.create(model="deepseek-chat", messages=messages).choices
        with pytest.raises(openai.PermissionDeniedError):
            openai.OpenAI(base_url=gw.base_url, api_key=cat, max_retries=0).chat.completions.create(
                model="deepseek-chat", messages=messages
            )
        upstream.mode, upstream.error_status = "error", 503
        with pytest.raises(openai.InternalServerError):  # both backends fail (one upstream)
            sdk.chat.completions.create(model="deepseek-chat", messages=messages)
        upstream.mode = "normal"
        _, _, text = gw.request("GET", "/metrics", parse=False)
        yield gw, text.decode()
    finally:
        gw.stop()


def test_every_metric_and_label_the_rules_and_dashboard_name_is_exposed(
    scraped: tuple[RunningGateway, str],
) -> None:
    _, text = scraped
    families, labels = _exposed(text)
    queries = _queries()
    assert len(queries) >= 30
    checked = set()
    for where, expr in queries:
        try:
            tree = promql_parser.parse(expr)
        except Exception as exc:  # the parser raises its own error types
            pytest.fail(f"{where}: {exc}")
        found: list[tuple[str, set[str]]] = []
        _walk(tree, found, set())
        assert found, where
        for name, used in found:
            if name in PROMETHEUS_SERIES or name in OPTIONAL:
                continue
            family = _family(name, families)
            assert family is not None, f"{where}: {name} is not a metric the gateway exposes"
            kind = families[family]
            if name.endswith("_total"):
                assert kind == "counter", (where, name, kind)
            have = labels.get(name) or set()
            if have:  # a family with samples: every label the query reads is one it has
                extra = used - have - {"instance", "job", "le"}
                assert not extra, f"{where}: {name} has no label {sorted(extra)} ({sorted(have)})"
            checked.add(name)
    # the rules and panels that matter most read what the scrape really held
    for name in (
        "portcullis_audit_store_healthy",
        "portcullis_backend_circuit_open",
        "portcullis_requests_total",
        "portcullis_denials_total",
        "portcullis_upstream_errors_total",
        "portcullis_gateway_seconds_bucket",
    ):
        assert name in checked and name in labels, name  # read, and with samples


def test_the_state_gauges_follow_the_audit_store_and_the_circuits(
    scraped: tuple[RunningGateway, str],
) -> None:
    gw, text = scraped
    assert "portcullis_audit_store_healthy 1.0" in text.splitlines()
    assert 'portcullis_backend_circuit_open{backend="deepseek-hosted"} 1.0' in text
    assert 'portcullis_backend_circuit_open{backend="deepseek-self"} 0.0' in text  # 1 of 5
    # the audit store stops taking writes: the gauge says so before any request is refused
    gw.app.state.services.audit._writer.healthy = False
    _, _, after = gw.request("GET", "/metrics", parse=False)
    assert "portcullis_audit_store_healthy 0.0" in after.decode().splitlines()


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `make test` installs it (scripts/ensure-promtool.sh)")
    return found


def test_promtool_checks_and_unit_tests_the_rules_and_lints_the_scrape(
    scraped: tuple[RunningGateway, str],
) -> None:
    promtool = _promtool()
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    _, text = scraped
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    # promtool's lint asks for a unit in the names of the gauges it cannot tell; nothing else
    problems = [
        line
        for line in (linted.stdout + linted.stderr).splitlines()
        if line.strip() and "should have" not in line and "non-histogram" not in line
    ]
    assert not problems, problems


def test_compose_s_monitoring_profile_mounts_these_files_and_its_prometheus_config_checks() -> None:
    """``docker compose --profile monitoring``: Prometheus scrapes both replicas as job
    ``portcullis`` (the name PortcullisDown reads) with these rules, Grafana provisions the data
    source and this dashboard; every file mounted exists; promtool checks the config and the
    rules it loads."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            assert (ROOT / source).exists(), (name, source)
    config = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    scrape = yaml.safe_load(config.read_text())["scrape_configs"][0]
    assert scrape["job_name"] == "portcullis"
    assert scrape["static_configs"][0]["targets"] == ["gateway-1:8080", "gateway-2:8080"]
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert "/etc/prometheus/portcullis-alerts.yml" in mounted
    provisioned = ROOT / "deploy" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioned / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    board = yaml.safe_load((provisioned / "dashboards" / "portcullis.yml").read_text())
    folder = board["providers"][0]["options"]["path"]
    assert any(
        v.endswith(f"{folder}/portcullis-dashboard.json:ro") for v in services["grafana"]["volumes"]
    )
    checked = subprocess.run(
        [_promtool(), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 17 rules found" in checked.stdout + checked.stderr
