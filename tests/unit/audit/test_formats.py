"""Export formats re-parse to exactly what was written, hostile values included."""

from __future__ import annotations

import json

import pytest

from audit.formats import (
    csv_header,
    csv_line,
    flatten,
    jsonl_line,
    neutralise,
    otlp_line,
    parse_csv,
    parse_jsonl,
    parse_otlp,
    parse_syslog,
    syslog_line,
    unneutralise,
)

HOSTILE = [
    "plain",
    "comma, inside",
    'double "quotes" here',
    "line\r\nbreak",
    "bare\rcarriage",
    "line\u2028separator\u2029paragraph",
    "emoji 🦘🔒",
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\tTAB",
    "\x00nul",
    "'quoted already",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_neutralisation_is_undone_exactly(value: str) -> None:
    cell = neutralise(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\x00"))
    assert unneutralise(cell) == value


def _event(value: str) -> dict[str, object]:
    return {
        "request_id": "r1",
        "ts": "2026-11-29T04:00:00.000000Z",
        "model": value,
        "principal": {"user": value, "jurisdiction": "AU"},
        "backend": {"id": value, "hosting_region": value},
        "decision": {"allow": False, "rule_ids": [value], "obligations": {"k": value}},
        "pii": {"counts": {value: 1}},
    }


def test_csv_rows_reparse_to_the_flattened_events() -> None:
    data = csv_header()
    expected = []
    for i, v in enumerate(HOSTILE, start=1):
        data += csv_line(i, "complete", _event(v), bytes([i]) * 32)
        expected.append(flatten(i, "complete", _event(v), bytes([i]) * 32))
    rows = parse_csv(data.decode("utf-8"))
    assert rows[1:] == expected
    assert len(rows[0]) == len(expected[0])
    # Every record ends with CRLF (RFC 4180); no cell starts with a formula trigger.
    assert data.endswith(b"\r\n")
    for line in data.decode().split('","'):
        assert not line.startswith(("=", "+", "@"))


def test_jsonl_syslog_and_otlp_records_reparse_exactly() -> None:
    jsonl = b"".join(
        jsonl_line(i, "intent", _event(v), b"\x01" * 32) for i, v in enumerate(HOSTILE)
    )
    syslog = b"".join(
        syslog_line(i, "intent", _event(v), b"\x01" * 32) for i, v in enumerate(HOSTILE)
    )
    otlp = b"".join(otlp_line(i, "intent", _event(v), b"\x01" * 32) for i, v in enumerate(HOSTILE))
    assert jsonl.count(b"\n") == len(HOSTILE) == otlp.count(b"\n")
    for lines in (jsonl, otlp):  # escaped, so line-based tools cannot split a record
        assert "\u2028".encode() not in lines and "\u2029".encode() not in lines
    for parsed in (list(parse_jsonl(jsonl)), list(parse_syslog(syslog)), list(parse_otlp(otlp))):
        assert [r["event"] for r in parsed] == [_event(v) for v in HOSTILE]
        assert [r["seq"] for r in parsed] == list(range(len(HOSTILE)))
        assert {r["leaf_hash"] for r in parsed} == {"01" * 32}


def test_syslog_uses_rfc5424_header_and_audit_facility() -> None:
    line = syslog_line(
        7,
        "complete",
        {"ts": "2026-11-29T04:00:00.000000Z", "decision": {"allow": False}},
        b"\x02" * 32,
    )
    length, _, rest = line.partition(b" ")
    assert int(length) == len(rest)
    assert rest.startswith(b"<109>1 2026-11-29T04:00:00.000000Z ")  # 13*8 + notice(5)
    assert b'[portcullis@32473 seq="7" leaf="' + b"02" * 32 + b'"]' in rest


def test_otlp_lines_are_export_logs_requests_by_opentelemetrys_own_schema() -> None:
    """Each line parses, strictly (no unknown field), as OpenTelemetry's protobuf
    ``ExportLogsServiceRequest`` from its JSON mapping — what the Collector's ``otlpjsonfile``
    receiver and an OTLP/HTTP ``/v1/logs`` endpoint read — with the entry in its body, its
    time, a WARN severity for a denial, and the attributes a log backend filters on."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    event = {
        "request_id": "01JDEXAMPLE",
        "ts": "2026-11-29T04:00:00.123456Z",
        "principal": {"jurisdiction": "AU-NSW"},
        "backend": {"id": "deepseek-hosted"},
        "decision": {"allow": False},
        "status": 403,
    }
    line = otlp_line(7, "complete", event, b"\x02" * 32)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    req = json_format.Parse(line, ExportLogsServiceRequest())  # unknown fields are an error
    (resource,) = req.resource_logs
    assert {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"] == (
        "portcullis"
    )
    (scope,) = resource.scope_logs
    assert scope.scope.name == "portcullis.audit"
    (record,) = scope.log_records
    assert record.time_unix_nano == 1795924800123456000  # 2026-11-29T04:00:00.123456Z
    assert record.severity_number == 13 and record.severity_text == "WARN"
    attrs = {a.key: a.value for a in record.attributes}
    assert attrs["portcullis.seq"].int_value == 7
    assert attrs["portcullis.kind"].string_value == "complete"
    assert attrs["portcullis.leaf_hash"].string_value == "02" * 32
    assert attrs["portcullis.request_id"].string_value == "01JDEXAMPLE"
    assert attrs["portcullis.jurisdiction"].string_value == "AU-NSW"
    assert attrs["portcullis.backend"].string_value == "deepseek-hosted"
    assert attrs["http.response.status_code"].int_value == 403
    assert attrs["portcullis.decision.allow"].bool_value is False
    assert json.loads(record.body.string_value) == event
    # a purged entry: no body, no time it no longer has, still its place in the chain
    purged = json_format.Parse(
        otlp_line(8, "intent", None, b"\x03" * 32), ExportLogsServiceRequest()
    )
    (rec,) = purged.resource_logs[0].scope_logs[0].log_records
    assert not rec.HasField("body") and rec.time_unix_nano == 0 and rec.severity_text == "INFO"
