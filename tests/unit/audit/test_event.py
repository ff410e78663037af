"""The canonical event keeps the schema's facts and strips anything that looks like content."""

from __future__ import annotations

import json

import pytest

from audit.canonical import canonical_bytes, canonical_json
from audit.event import normalise

SECRET_VALUES = [
    "Jane Citizen lives at 12 Example Street",
    "sk-live-4f9a8b7c6d5e4f3a2b1c",
    "123-45-6789",
    "jane.citizen@example.com",
]

FULL_EVENT = {
    "request_id": "req-1",
    "ts": "2026-11-29T04:00:00.123456Z",
    "endpoint": "chat",
    "principal": {
        "key_id": "k1",
        "user": "alice",
        "team": "legal",
        "tenant": "acme",
        "jurisdiction": "AU-NSW",
        "country": "AU",
        "subdivision": "AU-NSW",
        "sector": "government",
        "roles": ["user"],
        "tags": [],
    },
    "model": "deepseek-chat",
    "stream": False,
    "backend": {
        "id": "ds-syd",
        "operator": "self",
        "model_family": "deepseek",
        "model_origin": "CN",
        "hosting_country": "AU",
        "hosting_region": "Sydney",
        "self_hosted": True,
        "accredited_to": "protected",
        "retention": {
            "days": 0,
            "trains_on_inputs": False,
            "zero_data_retention": True,
            "terms_url": None,
        },
        "models": ["deepseek-chat"],
    },
    "attempts": [{"backend": "ds-syd", "outcome": "ok", "status": None, "pii": {}}],
    "decision": {
        "allow": True,
        "permitted_backends": ["ds-syd"],
        "rule_ids": ["au.gov.hosted"],
        "denying_rule_ids": [],
        "citation_ids": ["au-2025-02-04"],
        "denial_citations": {"au.gov.weights": ["au-2025-02-04"], "org.no_codes": []},
        "obligations": {"content_capture": False, "retention_class": "long"},
    },
    "bundle_revision": "rev-7",
    "config_hash": "abc123",
    "decision_input": {
        "version": "1",
        "phase": "final",
        "now": "2026-11-29T04:00:00Z",
        "principal": {"user": "alice", "jurisdiction": "AU-NSW"},
        "request": {
            "endpoint": "chat",
            "model": "deepseek-chat",
            "stream": False,
            "tools": False,
            "marking": "sensitive",
        },
        "backends": [],
        "pii": {"entities": {"PERSON": 2}},
        "deployment": {"self_hosted_stance": "cautious"},
    },
    "pii": {
        "counts": {"PERSON": 2, "EMAIL_ADDRESS": 1},
        "actions": {"PERSON": {"pseudonymise": 2}, "EMAIL_ADDRESS": {"redact": 1}},
        "output": {"PHONE_NUMBER": 1},
        "uninspectable": ["image_url"],
        "insecure": ["pii.insecure_pass_uninspectable"],
        "subjects": ["0123456789abcdef", "fedcba9876543210"],
        "output_subjects": ["00112233aabbccdd"],
    },
    "usage": {"prompt_tokens": 12, "completion_tokens": 30},
    "latency_ms": {"total": 120.5, "upstream": 100.0, "first_byte": None},
    "status": 200,
    "error_code": None,
    "client_address": "127.0.0.1",
    "digests": {"key_id": "s1", "prompt": "a" * 64, "answer": "b" * 64},
    "forwarded": True,
}


def test_a_complete_event_passes_unchanged() -> None:
    out = normalise(FULL_EVENT, "complete")
    assert out["stripped"] == 0
    for key, value in FULL_EVENT.items():
        if key == "decision_input":
            assert out[key]["pii"] == {"entities": {"PERSON": 2}}
            continue
        assert out[key] == value, key
    assert out["kind"] == "complete" and out["schema"] == 1


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("messages",), [{"role": "user", "content": SECRET_VALUES[0]}]),
        (("prompt",), SECRET_VALUES[0]),
        (("api_key",), SECRET_VALUES[1]),
        (("principal", "user"), SECRET_VALUES[0]),  # free text where an id belongs
        (("model",), SECRET_VALUES[0]),
        (("digests", "prompt"), SECRET_VALUES[3]),  # not a hex digest
        (("error_code",), SECRET_VALUES[2] + " " + SECRET_VALUES[0]),
        (("pii", "values"), {"PERSON": SECRET_VALUES[0]}),
        (("pii", "uninspectable"), [SECRET_VALUES[0]]),
        (("pii", "insecure"), [SECRET_VALUES[0]]),
        (("pii", "subjects"), [SECRET_VALUES[0]]),  # a value where its digest belongs
        (("pii", "subjects"), ["alice"]),  # an identifier, not a digest
        (("pii", "output_subjects"), [SECRET_VALUES[0]]),
        (("decision", "denial_citations"), {"r": [SECRET_VALUES[0]]}),
        (("decision", "denial_citations"), {SECRET_VALUES[0]: []}),
        (("decision", "obligations"), {"note": SECRET_VALUES[0]}),
        (("decision_input", "messages"), [SECRET_VALUES[0]]),
        (("usage", "prompt_tokens"), SECRET_VALUES[2]),
        (("latency_ms", "total"), SECRET_VALUES[1]),
    ],
)
def test_content_in_any_field_is_stripped_and_counted(path: tuple[str, ...], value: object) -> None:
    event = json.loads(json.dumps(FULL_EVENT))
    target = event
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    out = normalise(event, "intent")
    text = canonical_json(out)
    for secret in SECRET_VALUES:
        assert secret not in text
    assert out["stripped"] >= 1


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    a = normalise(FULL_EVENT, "complete")
    b = normalise(dict(reversed(list(FULL_EVENT.items()))), "complete")
    assert canonical_bytes(a) == canonical_bytes(b)
    assert b" " not in canonical_bytes({"a": 1, "b": [1, 2]})


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        normalise({}, "edit")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-29T04:00:00Z", "2026-11-29T04:00:00.000000Z"),
        ("2026-11-29T04:00:00.5Z", "2026-11-29T04:00:00.500000Z"),
        ("2026-11-29T04:00:00.123456Z", "2026-11-29T04:00:00.123456Z"),
        ("2026-11-29 04:00:00", None),  # not RFC 3339 UTC: dropped (the writer stamps now)
    ],
)
def test_times_are_stored_with_fixed_precision_so_they_sort_as_text(
    given: str, stored: str | None
) -> None:
    assert normalise({"ts": given}, "intent")["ts"] == stored


@pytest.mark.parametrize(
    "model",
    [
        "o1-2024-12-17",
        "o3-2025-04-16",
        "gpt-4.1-2025-04-14",
        "claude-opus-4-1-20250805",
        "gpt-4o-2024-08-06",
        "deepseek-chat",
    ],
)
def test_model_snapshot_names_are_kept(model: str) -> None:
    # The version digits and the snapshot date read as a nine-digit run (a phone number?): the
    # record lost the model of several real snapshots until the date was taken out of that test.
    out = normalise({"model": model, "decision_input": {"request": {"model": model}}}, "intent")
    assert out["model"] == model and out["decision_input"]["request"]["model"] == model
    assert out["stripped"] == 0


@pytest.mark.parametrize(
    "value", ["0412345678", "model-0412345678", "2024-12-17-0412345678", "a.b@example.org"]
)
def test_model_field_still_drops_personal_shapes(value: str) -> None:
    out = normalise({"model": value}, "intent")
    assert out["model"] is None and out["stripped"] == 1


@pytest.mark.parametrize(
    ("user", "team", "tenant", "tags"),
    [
        ("jane.doe@example.org", "data-analytics", "acme", ("cost_centre:42", "EU/AU")),
        ("Zoë_Ng", "Équipe.Données", "default", ("überstunden",)),
        ("u" * 200, "t" * 200, "n" * 200, ("x" * 100,)),
    ],
)
def test_the_record_keeps_every_principal_that_key_creation_accepts(
    user: str, team: str, tenant: str, tags: tuple[str, ...]
) -> None:
    from gateway.key_records import validate_principal_fields

    validate_principal_fields(user, "AU", "private", team, ("auditor",), tags, tenant)
    principal = {"user": user, "team": team, "tenant": tenant, "tags": list(tags)}
    out = normalise({"principal": principal}, "intent")
    assert {k: out["principal"][k] for k in principal} == principal
    assert out["stripped"] == 0


@pytest.mark.parametrize(
    "value", ["Jane Doe", "Data & Analytics", "two\nlines", "nul\x00byte", "x" * 201, ""]
)
def test_key_creation_refuses_names_the_record_would_drop(value: str) -> None:
    # Names with spaces passed key creation, and the record dropped them: its user_id and team
    # columns, which exports filter on, were empty. Now such a key is refused up front.
    from gateway.key_records import validate_principal_fields

    for fields in (
        (value, "AU", "private", None, (), (), "default"),
        ("u", "AU", "private", value, (), (), "default"),
        ("u", "AU", "private", None, (), (value,), "default"),
        ("u", "AU", "private", None, (), (), value),
    ):
        with pytest.raises(ValueError):
            validate_principal_fields(*fields)
    if value:
        out = normalise({"principal": {"user": value}}, "intent")
        assert out["principal"]["user"] is None and out["stripped"] == 1


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://platform.deepseek.com/downloads/DeepSeek%20Open%20Platform%20Terms.html", True),
        ("https://openai.com/policies/api-data-usage-policies", True),
        ("https://example.org/terms of service", False),
        ("javascript:alert(1)", False),
        ("Our terms: no retention.", False),
    ],
)
def test_backend_terms_url_is_kept_when_it_is_a_url(url: str, kept: bool) -> None:
    from pydantic import ValidationError

    from gateway.config.backends import Retention

    out = normalise({"backend": {"id": "b", "retention": {"terms_url": url}}}, "intent")
    assert (out["backend"]["retention"]["terms_url"] == url) is kept
    assert out["stripped"] == (0 if kept else 1)
    if kept:
        Retention(terms_url=url)
    else:
        with pytest.raises(ValidationError):
            Retention(terms_url=url)


@pytest.mark.parametrize(
    "path", [("principal", "user"), ("principal", "team"), ("backend", "id"), ("error_code",)]
)
def test_an_identifier_with_a_trailing_newline_is_not_kept(path: tuple[str, ...]) -> None:
    # ``$`` matched before a final newline: "alice\n" passed as an identifier and reached the
    # record, where no filter for "alice" finds it.
    event = json.loads(json.dumps(FULL_EVENT))
    target = event
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = "alice\n"
    out = normalise(event, "intent")
    kept = out
    for p in path:
        kept = kept[p]
    assert kept is None and out["stripped"] >= 1


def test_a_lone_surrogate_is_dropped_not_a_reason_for_the_record_to_fail() -> None:
    """Reliability E-2: text that is not UTF-8 (a lone surrogate, as a hand-edited label could
    hold) would stop the entry's canonical encoding and with it the request; it is dropped and
    counted like content, and the entry encodes."""
    from audit.store import make_entry

    event = json.loads(json.dumps(FULL_EVENT))
    event["backend"]["hosting_region"] = "Syd\udcffney"
    event["model"] = "gpt\ud800"
    out = normalise(event, "complete")
    assert out["backend"]["hosting_region"] is None and out["model"] is None
    assert out["stripped"] >= 2
    canonical_json(out).encode("utf-8")
    make_entry("complete", event, "w:1:1")  # no UnicodeEncodeError
    event["backend"]["hosting_region"] = "Sydney, NSW 🦘"  # non-ASCII UTF-8 is kept
    assert normalise(event, "complete")["backend"]["hosting_region"] == "Sydney, NSW 🦘"
