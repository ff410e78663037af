"""Export filters are checked before any query: what no entry can match is refused, naming it."""

from __future__ import annotations

import pytest

from audit.export import ExportFilter, utc_text


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"user": "a\x00b"}, "user"),  # PostgreSQL refused the query mid-export
        ({"user": "two words"}, "user"),
        ({"team": "x" * 201}, "team"),
        ({"jurisdiction": "AU;DROP"}, "jurisdiction"),
        ({"rule": "\n"}, "rule"),
        ({"backend": "%"}, "backend"),
        ({"decision": "maybe"}, "decision"),
        ({"kinds": ("intent", "keys")}, "kind"),
        ({"since": "2026-11-29"}, "since"),  # the caller's text, before utc_text made it
        ({"until": "\x00"}, "until"),
    ],
)
def test_a_filter_no_entry_can_match_is_refused_by_name(fields: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}:"):
        ExportFilter(**fields)


def test_good_filters_pass_and_times_become_the_stored_text() -> None:
    flt = ExportFilter(
        since=utc_text("2026-11-29"),
        until=utc_text("2026-11-30T10:00:00+10:00"),
        jurisdiction="AU-NSW",
        user="jane.doe@example.org",
        team="legal",
        decision="deny",
        rule="au.pspf.deepseek",
        backend="deepseek-hosted",
        kinds=("key", "config"),
    )
    assert (flt.since, flt.until) == ("2026-11-29T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z")
    with pytest.raises(ValueError):
        utc_text("next tuesday")
