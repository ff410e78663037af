"""The sliding minute (gateway.limit_window) on a clock the test holds: never more than the
limit in any 60 seconds, each entry back whole a minute after it was taken, settled while it is
in the window. Redis's scripts are held to the same in tests/integration/test_limit_window.py."""

from __future__ import annotations

import pytest

from gateway.limit_window import MINUTE, Windows


def test_never_more_than_the_limit_in_any_sixty_seconds() -> None:
    """Reliability L-3's arithmetic: 60 a minute, a request every 0.1 s for two minutes — 60 in
    the first 30 s (a token bucket would give 90), and no 60-second span holds more than 60."""
    w = Windows()
    taken = []
    for i in range(1200):
        now = i / 10
        if w.take("k", f"e{i}", now, 60, 0, 0).refused is None:
            taken.append(now)
    assert sum(t < 30 for t in taken) == 60
    assert all(sum(s <= t < s + MINUTE for t in taken) <= 60 for s in taken)
    assert len(taken) == 120  # the second minute's 60 once the first minute's came back


def test_a_refusal_says_when_the_oldest_comes_back_and_what_is_left() -> None:
    w = Windows()
    first = w.take("k", "a", 100.0, 3, 1000, 100)
    assert (first.refused, first.requests_left, first.tokens_left) == (None, 2.0, 900.0)
    w.take("k", "b", 110.0, 3, 1000, 100)
    w.take("k", "c", 120.0, 3, 1000, 100)
    no = w.take("k", "d", 130.0, 3, 1000, 100)
    assert no.refused == "requests" and no.wait_s == pytest.approx(30.0)  # "a" back at 160
    back = w.take("k", "d", 160.0, 3, 1000, 100)  # a minute after "a": it has come back
    assert back.refused is None and back.requests_left == 0.0
    assert w.held("k", 160.0) == (3, 300)


def test_tokens_wait_for_enough_of_the_oldest_to_come_back() -> None:
    w = Windows()
    w.take("k", "a", 0.0, 0, 1000, 500)
    w.take("k", "b", 10.0, 0, 1000, 300)
    no = w.take("k", "c", 20.0, 0, 1000, 700)  # 500 more needed: "a" alone frees 500, at 60
    assert no.refused == "tokens" and no.wait_s == pytest.approx(40.0)
    no = w.take("k", "c", 20.0, 0, 1000, 900)  # 700 more: "a" and "b", at 70
    assert no.wait_s == pytest.approx(50.0)


def test_settling_gives_back_unused_tokens_charges_extra_and_can_give_the_request_back() -> None:
    w = Windows()
    w.take("k", "a", 0.0, 2, 1000, 800)
    w.settle("k", "a", 700, request_back=False)  # 800 reserved, 100 used
    assert w.held("k", 1.0) == (1, 100)
    w.settle("k", "a", -50, request_back=True)  # 50 more used than settled; the request back
    assert w.held("k", 1.0) == (0, 150)
    w.settle("k", "a", 0, request_back=True)  # given back once only
    assert w.held("k", 1.0) == (0, 150)
    assert w.held("k", 60.0) == (0, 0)  # the minute is over: it left whole
    w.settle("k", "a", 100, request_back=False)  # and is not settled once it has left
    w.settle("other", "x", 100, request_back=False)
    assert w.held("k", 60.0) == (0, 0)


def test_keys_gone_quiet_are_swept_away() -> None:
    w = Windows()
    for i in range(100):
        w.take(f"k{i}", "e", 0.0, 10, 0, 0)
    for i in range(Windows.SWEEP_EVERY):  # a minute later, one busy key
        w.take("busy", f"e{i}", 61.0, 0, 0, 0)
    assert set(w._logs) == {"busy"}


def test_a_token_refusal_looks_through_the_oldest_64_entries_at_most() -> None:
    w = Windows()
    for i in range(1000):  # a busy minute of small requests
        w.take("k", f"e{i}", i * 0.05, 0, 10_000, 10)
    no = w.take("k", "big", 50.0, 0, 10_000, 5_000)  # 5,000 must come back: the 500th entry
    assert no.refused == "tokens"
    assert no.wait_s == pytest.approx(63 * 0.05 + MINUTE - 50.0)  # told of the 64th: a bound


def test_a_very_busy_minute_leaves_over_several_calls_counted_until_it_has() -> None:
    w = Windows()
    for i in range(3000):
        w.take("k", f"e{i}", i / 1000, 0, 1_000_000, 1)
    assert w.held("k", 100.0) == (3000 - 1024, 3000 - 1024)  # the oldest 1,024 gone
    assert w.held("k", 100.0) == (3000 - 2048, 3000 - 2048)
    assert w.held("k", 100.0) == (0, 0)
    assert "k" not in w._logs
