"""OpenAI's ``x-ratelimit-*`` headers of an answer (``Reservation.headers``): the key's own
buckets, or — when the request also drew on a person's, a team's or a tenant's — the tightest
of them, each kind on its own (the requests from one bucket, the tokens from another)."""

from __future__ import annotations

from gateway.limiter import Reservation


def _headers(r: Reservation) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in r.headers()}


def test_a_key_alone_says_its_own_buckets_and_nothing_for_a_rate_of_zero() -> None:
    key = Reservation("k", 100, 60, 0, remaining_requests=59.4, remaining_tokens=0.0)
    assert _headers(key) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "0.6s",
    }


def test_with_shared_buckets_each_kind_says_the_tightest() -> None:
    team = Reservation("team:ops", 100, 2, 0, remaining_requests=1.0)
    tenant = Reservation("tenant:acme", 100, 0, 10_000, remaining_tokens=400.0)
    key = Reservation(
        "k", 100, 60, 100_000, remaining_requests=59.0, remaining_tokens=99_900.0,
        linked=(team, tenant),
    )  # fmt: skip
    assert _headers(key) == {
        "x-ratelimit-limit-requests": "2",  # the team's two a minute, one left
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "10000",  # the tenant's, 400 left
        "x-ratelimit-remaining-tokens": "400",
        "x-ratelimit-reset-tokens": "57.6s",
    }
    # a shared bucket with more room than the key's does not replace it
    roomy = Reservation("user:liz", 100, 1000, 0, remaining_requests=900.0)
    assert _headers(Reservation("k", 0, 60, 0, remaining_requests=3.0, linked=(roomy,))) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-reset-requests": "57s",
    }
    # shadow mode's stand-in for a refusing shared bucket (nothing taken, no rate) says nothing
    shadow = Reservation("team:ops", 0, 0, 0)
    assert (
        _headers(Reservation("k", 0, 60, 0, remaining_requests=5.0, linked=(shadow,)))[
            "x-ratelimit-remaining-requests"
        ]
        == "5"
    )


def test_in_a_sliding_minute_it_is_full_again_a_minute_after_the_newest_entry() -> None:
    """``limits.window: sliding``: the reset is the tightest bucket's own — a minute for a
    sliding one (its newest entry, this request's, leaves then), even when the key itself has
    no limit and so no entry."""
    key = Reservation("k", 100, 60, 0, remaining_requests=10.0, entry="e1")
    assert _headers(key)["x-ratelimit-reset-requests"] == "60s"
    team = Reservation("team:ops", 100, 2, 0, remaining_requests=1.0, entry="e2")
    unlimited = Reservation("k", 100, 0, 0, linked=(team,))  # the key: no limit, no entry
    assert _headers(unlimited) == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "60s",
    }
    bucket = Reservation("k", 100, 60, 0, remaining_requests=59.0, linked=(team,))
    assert _headers(bucket)["x-ratelimit-reset-requests"] == "60s"  # the team's is the tightest
