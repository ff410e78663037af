"""Export formats re-parse to exactly what was written, hostile values included."""

from __future__ import annotations

import pytest

from audit.formats import (
    csv_header,
    csv_line,
    flatten,
    jsonl_line,
    neutralise,
    parse_csv,
    parse_jsonl,
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


def test_jsonl_and_syslog_records_reparse_exactly() -> None:
    jsonl = b"".join(
        jsonl_line(i, "intent", _event(v), b"\x01" * 32) for i, v in enumerate(HOSTILE)
    )
    syslog = b"".join(
        syslog_line(i, "intent", _event(v), b"\x01" * 32) for i, v in enumerate(HOSTILE)
    )
    assert jsonl.count(b"\n") == len(HOSTILE)
    assert "\u2028".encode() not in jsonl  # escaped, so line-based tools cannot split a record
    for parsed in (list(parse_jsonl(jsonl)), list(parse_syslog(syslog))):
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
