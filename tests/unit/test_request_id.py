"""Request ids: the id the caller is given is the id the audit record keeps."""

from __future__ import annotations

import pytest

from audit.event import normalise
from gateway.http.request_id import request_id


def _scope(header: str | None = None) -> dict:  # type: ignore[type-arg]
    headers = [(b"x-request-id", header.encode())] if header is not None else []
    return {"type": "http", "headers": headers}


def test_generated_ids_survive_the_audit_filter() -> None:
    # Hex ids held a run of nine decimal digits about one time in ten, and the audit's filter
    # dropped them as a possible phone or id number: the record lost its request id.
    ids = {request_id(_scope()) for _ in range(20_000)}
    assert len(ids) == 20_000
    for rid in ids:
        assert rid.startswith("req_") and len(rid) == 28
        assert normalise({"request_id": rid}, "intent")["request_id"] == rid


def test_generated_ids_take_the_filters_shortcut_with_the_same_verdict() -> None:
    # plain_request_id passes the gateway's own ids without its three searches; the generator
    # and that shortcut must agree on the shape, and the shortcut must not change a verdict.
    from audit import shapes

    for _ in range(2_000):
        rid = request_id(_scope())
        assert shapes._GENERATED_ID.fullmatch(rid)
        assert not shapes.looks_personal.__wrapped__(rid)
    # the shortcut is exact: a lookalike with digits is still judged by the searches
    assert not shapes.plain_request_id("req_" + "1234567890" + "a" * 14)


@pytest.mark.parametrize(
    "header",
    [
        "trace-abc.123:xyz",
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID whose last group is all digits
        "7F2C1A9E-0B3D-4E5F-8A6B-1C2D3E4F5A6B",
    ],
)
def test_plain_caller_id_is_kept_in_the_header_and_the_record(header: str) -> None:
    scope = _scope(header)
    assert request_id(scope) == header
    assert request_id(scope) == header
    assert normalise({"request_id": header}, "intent")["request_id"] == header


@pytest.mark.parametrize(
    "header",
    [
        "0412345678",  # a phone number
        "alice@example.com",  # not plain
        "id-123456789012",  # a long digit run
        "short",  # under 8 characters
        "x" * 129,
        "has space here",
    ],
)
def test_caller_id_that_is_not_plain_or_looks_personal_is_replaced(header: str) -> None:
    rid = request_id(_scope(header))
    assert rid.startswith("req_") and rid != header
    assert normalise({"request_id": rid}, "intent")["request_id"] == rid


def test_generated_ids_sort_by_time_and_stay_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    # Time-ordered ids keep the audit log's request_id index growing at its end (random ids
    # rewrote a random index page per entry). Ordered across milliseconds, unique within one.
    import gateway.http.request_id as rid_mod

    now = [1_764_400_000_000_000_000]  # ns
    monkeypatch.setattr(rid_mod.time, "time_ns", lambda: now[0])
    same_ms = [rid_mod.new_request_id() for _ in range(5_000)]
    assert len(set(same_ms)) == 5_000
    assert {r[:16] for r in same_ms} == {same_ms[0][:16]}  # "req_" + the same 12 time letters
    later = []
    for _ in range(200):
        now[0] += 1_000_000  # one millisecond
        later.append(rid_mod.new_request_id())
    assert later == sorted(later) and later[0] > max(same_ms)
    # the time part is the millisecond clock, spelled a-p for 0-f
    ms = int(later[-1][4:16].translate(str.maketrans("abcdefghijklmnop", "0123456789abcdef")), 16)
    assert ms == now[0] // 1_000_000
