"""Export formats: CSV (RFC 4180, formula cells neutralised), JSONL, Syslog (RFC 5424 with
RFC 6587 octet-counting framing), and OpenTelemetry logs (OTLP/JSON, one
``ExportLogsServiceRequest`` per line: the file the OpenTelemetry Collector's ``otlpjsonfile``
receiver reads, and the body an OTLP/HTTP ``/v1/logs`` endpoint takes). Each takes a stored row
(``seq``, ``kind``, ``body``, ``leaf_hash``) and returns bytes; each has a parser that gives the
row back exactly.
"""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Any

from audit.store import parse_utc

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "csv_header",
    "csv_line",
    "flatten",
    "jsonl_line",
    "neutralise",
    "otlp_line",
    "otlp_record",
    "otlp_request",
    "parse_csv",
    "parse_jsonl",
    "parse_otlp",
    "parse_syslog",
    "syslog_line",
    "unneutralise",
]

FORMATS = ("csv", "jsonl", "syslog", "otlp")

# Spreadsheet formula triggers (OWASP CSV injection); a leading quote is escaped as well so that
# neutralisation can be undone exactly.
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\x00", "'")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(_DANGEROUS) else cell


def unneutralise(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return " ".join(str(x) for x in v)
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(v)


def _g(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(p)
    return d


CSV_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("request_id", ("request_id",)),
    ("ts", ("ts",)),
    ("tenant", ("principal", "tenant")),
    ("jurisdiction", ("principal", "jurisdiction")),
    ("user", ("principal", "user")),
    ("team", ("principal", "team")),
    ("sector", ("principal", "sector")),
    ("key_id", ("principal", "key_id")),
    ("endpoint", ("endpoint",)),
    ("model", ("model",)),
    ("backend", ("backend", "id")),
    ("backend_operator", ("backend", "operator")),
    ("backend_hosting_country", ("backend", "hosting_country")),
    ("backend_hosting_region", ("backend", "hosting_region")),
    ("backend_self_hosted", ("backend", "self_hosted")),
    ("decision_allow", ("decision", "allow")),
    ("rule_ids", ("decision", "rule_ids")),
    ("denying_rule_ids", ("decision", "denying_rule_ids")),
    ("citation_ids", ("decision", "citation_ids")),
    ("obligations", ("decision", "obligations")),
    ("bundle_revision", ("bundle_revision",)),
    ("config_hash", ("config_hash",)),
    ("pii_counts", ("pii", "counts")),
    ("pii_actions", ("pii", "actions")),
    ("pii_uninspectable", ("pii", "uninspectable")),
    ("pii_insecure", ("pii", "insecure")),
    ("usage", ("usage",)),
    ("latency_ms", ("latency_ms",)),
    ("status", ("status",)),
    ("error_code", ("error_code",)),
    ("forwarded", ("forwarded",)),
    ("system_prompts", ("system_prompts", "ids")),
    ("system_prompt_canary_leaks", ("system_prompts", "canary_leaks")),
    ("client_address", ("client_address",)),
    ("digest_key_id", ("digests", "key_id")),
    ("prompt_digest", ("digests", "prompt")),
    ("answer_digest", ("digests", "answer")),
    ("actor", ("actor",)),
    ("action", ("action",)),
    ("stripped", ("stripped",)),
)


def flatten(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> list[str]:
    """The CSV cells of one entry, before neutralisation (a purged entry keeps seq/kind/leaf)."""
    cells = [str(seq), kind]
    cells += [_s(_g(body, *path)) if body is not None else "" for _, path in CSV_COLUMNS]
    cells += ["true" if body is None else "false", leaf.hex()]
    return cells


def csv_header() -> bytes:
    names = ["seq", "kind", *(n for n, _ in CSV_COLUMNS), "purged", "leaf_hash"]
    return _csv_bytes(names)


def csv_row(cells: list[str]) -> bytes:
    """One RFC 4180 row, every cell quoted, formula triggers neutralised, CRLF-terminated."""
    return _csv_bytes(cells)


def _csv_bytes(cells: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerow(
        [neutralise(c) for c in cells]
    )
    return buf.getvalue().encode("utf-8")


def csv_line(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> bytes:
    return _csv_bytes(flatten(seq, kind, body, leaf))


def parse_csv(data: str) -> list[list[str]]:
    """Rows of an exported CSV (header included), neutralisation undone."""
    return [[unneutralise(c) for c in row] for row in csv.reader(io.StringIO(data, newline=""))]


def jsonl_line(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> bytes:
    # ASCII-escaped so that U+2028/U+2029 and the like cannot break line-based tools.
    rec = {"seq": seq, "kind": kind, "leaf_hash": leaf.hex(), "event": body}
    return (
        json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
    ).encode()


def _lines(data: bytes | IO[bytes]) -> Iterable[bytes]:
    """A whole export's lines, or an open file's, read as they are needed."""
    return data.split(b"\n") if isinstance(data, bytes) else data


def parse_jsonl(data: bytes | IO[bytes]) -> Iterator[dict[str, Any]]:
    for line in _lines(data):
        if line.strip():
            yield json.loads(line)


_HOST = (socket.gethostname() or "-")[:255].replace(" ", "-")


def syslog_line(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> bytes:
    """RFC 5424, facility 13 (log audit); severity notice for denials, info otherwise."""
    deny = _g(body, "decision", "allow") is False
    pri = 13 * 8 + (5 if deny else 6)
    ts = _s(_g(body, "ts")) or "-"
    sd = f'[portcullis@32473 seq="{seq}" leaf="{leaf.hex()}"]'
    msg = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    line = (
        f"<{pri}>1 {ts} {_HOST} portcullis - {kind} {sd} ".encode() + b"\xef\xbb\xbf" + msg.encode()
    )
    return f"{len(line)} ".encode() + line


def _frames(fh: IO[bytes]) -> Iterator[bytes]:
    """RFC 6587 octet-counted frames (``<length> <record>``), one at a time."""
    while True:
        length = b""
        while (c := fh.read(1)) != b" ":
            if not c:
                if length:
                    raise ValueError("a syslog frame ends inside its length")
                return
            length += c
            if len(length) > 10:
                raise ValueError("a syslog frame length is too long")
        n = int(length)
        rec = fh.read(n)
        if len(rec) != n:
            raise ValueError("a syslog frame is shorter than its length")
        yield rec


def parse_syslog(data: bytes | IO[bytes]) -> Iterator[dict[str, Any]]:
    """Octet-counted RFC 5424 records back to ``{seq, kind, leaf_hash, event}``."""
    for rec in _frames(io.BytesIO(data) if isinstance(data, bytes) else data):
        head, _, msg = rec.partition(b"\xef\xbb\xbf")
        parts = head.decode().split(" ", 6)
        sd = parts[6]
        seq = int(sd.split('seq="', 1)[1].split('"', 1)[0])
        leaf = sd.split('leaf="', 1)[1].split('"', 1)[0]
        yield {"seq": seq, "kind": parts[5], "leaf_hash": leaf, "event": json.loads(msg)}


# OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): 64-bit integers
# as decimal strings, enums as numbers, attribute values as AnyValue objects.
_OTLP_RESOURCE = {
    "attributes": [
        {"key": "service.name", "value": {"stringValue": "portcullis"}},
        {"key": "host.name", "value": {"stringValue": _HOST}},
    ]
}
_OTLP_SCOPE = {"name": "portcullis.audit"}
_SEVERITY = {False: (9, "INFO"), True: (13, "WARN")}  # a denial is WARN
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _otlp_time(ts: Any) -> str:
    """Nanoseconds since the epoch of an entry's RFC 3339 UTC ``ts`` (``"0"``: unknown)."""
    if not isinstance(ts, str):
        return "0"
    try:
        d = parse_utc(ts) - _EPOCH
    except ValueError:
        return "0"
    return str((d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000)


def otlp_line(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> bytes:
    """One entry as an OTLP log record in an ``ExportLogsServiceRequest`` of its own, one line."""
    request = otlp_request([otlp_record(seq, kind, body, leaf)])
    return (json.dumps(request, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def otlp_request(records: list[dict[str, Any]]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportLogsServiceRequest`` holding ``records`` (from :func:`otlp_record`)."""
    return {
        "resourceLogs": [
            {
                "resource": _OTLP_RESOURCE,
                "scopeLogs": [{"scope": _OTLP_SCOPE, "logRecords": records}],
            }
        ]
    }


def otlp_record(seq: int, kind: str, body: Mapping[str, Any] | None, leaf: bytes) -> dict[str, Any]:
    """One entry as an OTLP/JSON log record. The record's body is the entry's JSON (exact,
    ASCII-escaped); attributes name it (``seq``, ``kind``, leaf hash) and carry what a log
    backend filters on (request id, status, decision, jurisdiction); a denial is severity WARN."""
    deny = _g(body, "decision", "allow") is False
    number, text = _SEVERITY[deny]
    attrs: list[dict[str, Any]] = [
        {"key": "portcullis.seq", "value": {"intValue": str(seq)}},
        {"key": "portcullis.kind", "value": {"stringValue": kind}},
        {"key": "portcullis.leaf_hash", "value": {"stringValue": leaf.hex()}},
    ]
    for key, path in (
        ("portcullis.request_id", ("request_id",)),
        ("portcullis.jurisdiction", ("principal", "jurisdiction")),
        ("portcullis.backend", ("backend", "id")),
    ):
        v = _g(body, *path)
        if isinstance(v, str):
            attrs.append({"key": key, "value": {"stringValue": v}})
    status = _g(body, "status")
    if isinstance(status, int) and not isinstance(status, bool):
        attrs.append({"key": "http.response.status_code", "value": {"intValue": str(status)}})
    allow = _g(body, "decision", "allow")
    if isinstance(allow, bool):
        attrs.append({"key": "portcullis.decision.allow", "value": {"boolValue": allow}})
    time_ns = _otlp_time(_g(body, "ts"))
    record: dict[str, Any] = {
        "timeUnixNano": time_ns,
        "observedTimeUnixNano": time_ns,
        "severityNumber": number,
        "severityText": text,
        "attributes": attrs,
    }
    if body is not None:  # a purged entry keeps its seq, kind and leaf hash only
        event = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        record["body"] = {"stringValue": event}
    return record


def parse_otlp(data: bytes | IO[bytes]) -> Iterator[dict[str, Any]]:
    """OTLP/JSON lines back to ``{seq, kind, leaf_hash, event}``."""
    for line in _lines(data):
        if not line.strip():
            continue
        for resource in json.loads(line)["resourceLogs"]:
            for scope in resource["scopeLogs"]:
                for record in scope["logRecords"]:
                    attrs = {a["key"]: a["value"] for a in record["attributes"]}
                    body = record.get("body")
                    yield {
                        "seq": int(attrs["portcullis.seq"]["intValue"]),
                        "kind": attrs["portcullis.kind"]["stringValue"],
                        "leaf_hash": attrs["portcullis.leaf_hash"]["stringValue"],
                        "event": json.loads(body["stringValue"]) if body else None,
                    }
