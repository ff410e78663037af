"""The canonical audit event: a whitelist schema and content stripping.

The gateway hands over a plain dict (field list: ``docs/audit.md``). :func:`normalise` keeps only
the fields of the schema, with the expected shapes; anything else (unknown keys, long strings,
values that do not look like identifiers, digests that are not hex) is dropped and counted in
``stripped``, so that no prompt, answer, PII value or key can reach the store by accident.
Its bytes (what the Merkle leaf is computed over) are :mod:`audit.canonical`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from audit.spec_compiler import ListOf, Nested, SpecCompiler
from audit.stripper import Fixed, Json
from audit.stripper import Stripper as _Stripper

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "UNSENT_OUTCOMES",
    "Fixed",
    "normalise",
    "normalise_exotic",
    "normalise_fields",
]

SCHEMA_VERSION = 1
# An attempt's outcomes in which the request never went out (no connection, no TLS session):
# the backend got nothing (gateway.upstream.UpstreamFailure's kinds).
UNSENT_OUTCOMES = frozenset({"connect", "tls"})
# intent: written before forwarding; complete: the outcome; incomplete: written by recovery for an
# intent whose process died; export/purge/content_read/shred: administrative actions; config: a
# configuration reload (gateway.reload), recorded before the new catalogue takes effect; key: a
# key created, its limits changed or revoked (gateway.keys), with the principal it stands for;
# access: an admin call by a valid key that lacks the route's role, refused (gateway.http.admin).
KINDS = frozenset(
    {
        "intent",
        "complete",
        "incomplete",
        "export",
        "purge",
        "content_read",
        "shred",
        "config",
        "key",
        "access",
    }
)

_HEX = re.compile(r"^[0-9a-f]{16,128}\Z")
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z\Z")


Field = Callable[[_Stripper, Any], Json]
Spec = dict[str, Field]


_S = _Stripper
PRINCIPAL: Spec = {
    "key_id": _S.ident,
    "user": _S.ident,
    "team": _S.ident,
    "tenant": _S.ident,
    "jurisdiction": _S.ident,
    "country": _S.ident,
    "subdivision": _S.ident,
    "sector": _S.ident,
    "roles": _S.ids,
    "tags": _S.ids,
}
RETENTION: Spec = {
    "days": _S.number,
    "trains_on_inputs": _S.boolean,
    "zero_data_retention": _S.boolean,
    "terms_url": _S.url,
}
BACKEND: Spec = {
    "id": _S.ident,
    "operator": _S.ident,
    "model_family": _S.ident,
    "model_origin": _S.ident,
    "hosting_country": _S.ident,
    "hosting_region": _S.label,
    "self_hosted": _S.boolean,
    "accredited_to": _S.ident,
    "retention": Nested(RETENTION),
    "models": _S.ids,
}


def _pii_actions(s: _Stripper, v: Any) -> dict[str, dict[str, int]]:
    if not isinstance(v, Mapping):
        if v is not None:
            s.drop()
        return {}
    out: dict[str, dict[str, int]] = {}
    for k, per in v.items():
        key = s.ident(k)
        if key is not None:
            out[key] = s.counts(per)
    return out


def _digest(s: _Stripper, v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str) and _HEX.match(v):
        return v
    s.drop()
    return None


def _id_lists(s: _Stripper, v: Any) -> dict[str, list[str]]:
    """Identifiers to lists of identifiers (a denying rule to the actions it cited)."""
    if not isinstance(v, Mapping):
        if v is not None:
            s.drop()
        return {}
    out: dict[str, list[str]] = {}
    for k, ids in v.items():
        key = s.ident(k)
        if key is not None:
            out[key] = s.ids(ids)
    return out


_SUBJECT = re.compile(r"^[0-9a-f]{16}\Z")


def _subjects(s: _Stripper, v: Any) -> list[str]:
    """The subject index's digests: 16 hex digits each, anything else dropped."""
    if not isinstance(v, list | tuple):
        if v is not None:
            s.drop()
        return []
    out = [d for d in v if isinstance(d, str) and _SUBJECT.match(d)]
    if len(out) != len(v):
        s.drop()
    return out


def _ts(s: _Stripper, v: Any) -> str | None:
    """RFC 3339 UTC, always with 6 fraction digits, so that stored times sort as text."""
    if isinstance(v, str) and _TS.match(v):
        head, _, frac = v[:-1].partition(".")
        return f"{head}.{frac:0<6}Z"
    if v is not None:
        s.drop()
    return None


REQUEST: Spec = {
    "endpoint": _S.ident,
    "api": _S.ident,
    "model": _S.model,
    "stream": _S.boolean,
    "tools": _S.boolean,
    "marking": _S.ident,
}
DECISION_INPUT: Spec = {
    "version": _S.ident,
    "phase": _S.ident,
    "now": _S.ident,
    "principal": Nested(PRINCIPAL),
    "request": Nested(REQUEST),
    "backends": ListOf(BACKEND),
    "pii": Nested({"entities": _S.counts}),
    "deployment": _S.scalars,
}
DECISION: Spec = {
    "allow": _S.boolean,
    "permitted_backends": _S.ids,
    "rule_ids": _S.ids,
    "denying_rule_ids": _S.ids,
    "citation_ids": _S.ids,
    # each denying rule and the citation ids of its own reasons (since 2026-12-01)
    "denial_citations": _id_lists,
    "obligations": _S.scalars,
}
PII: Spec = {
    "counts": _S.counts,
    "actions": _pii_actions,
    "output": _S.counts,
    "uninspectable": _S.ids,  # content kinds the detector could not read (image_url, token_ids)
    "insecure": _S.ids,  # insecure switches this request went through (pii.enabled:false, ...)
    # keyed digests of the values found (gateway.pii.actions.subject_digest): the subject index
    "subjects": _subjects,
    # and of the values the answer brought that the prompt did not hold (pii.output's values)
    "output_subjects": _subjects,
}
DIGESTS: Spec = {"key_id": _S.ident, "prompt": _digest, "answer": _digest}
# ``pii``: for an attempt that failed after the request went out, the actions taken on the
# personal data in the body that backend got ({TYPE: {action: n}}; {} otherwise)
ATTEMPT: Spec = {
    "backend": _S.ident,
    "outcome": _S.ident,
    "status": _S.number,
    "pii": _pii_actions,
}
EVENT: Spec = {
    "request_id": _S.request_id,
    "ts": _ts,
    "endpoint": _S.ident,
    "principal": Nested(PRINCIPAL),
    "model": _S.model,
    "stream": _S.boolean,
    "backend": Nested(BACKEND),
    "attempts": ListOf(ATTEMPT),
    "decision": Nested(DECISION),
    "bundle_revision": _S.ident,
    "config_hash": _S.ident,
    "decision_input": Nested(DECISION_INPUT),
    "pii": Nested(PII),
    "usage": _S.counts,
    "latency_ms": _S.numbers,
    "status": _S.number,
    "error_code": _S.untrusted,
    "client_address": _S.ident,
    "digests": Nested(DIGESTS),
    "forwarded": _S.boolean,
    # system prompts the gateway added (ids) and how often the answer repeated their canary
    "system_prompts": Nested({"ids": _S.ids, "canary_leaks": _S.number}),
    # the request and answer were sealed in the content vault (a legal-hold obligation)
    "content_captured": _S.boolean,
    # what shadow mode (limits.shadow, budgets.shadow) let through that would have been refused
    "shadowed": _S.ids,
    # administrative events (export, purge, content_read, shred, config, key)
    "actor": _S.ident,
    "action": _S.scalars,
}


# The specs above are the reference: ``_Stripper.fields`` walks them. The normalisers below run
# the same specs compiled into straight-line functions (:mod:`audit.spec_compiler`).
_EVENT_FIELDS = SpecCompiler(Fixed, _Stripper).compile(EVENT)
_SOME: dict[tuple[str, ...], Callable[[_Stripper, Mapping[str, Any]], dict[str, Json]]] = {}


def _fields_of(keys: tuple[str, ...]) -> Callable[[_Stripper, Mapping[str, Any]], dict[str, Json]]:
    f = _SOME.get(keys)
    if f is None:
        unknown = set(keys) - EVENT.keys()
        if unknown:
            raise KeyError(f"not fields of the audit event: {sorted(unknown)}")
        f = _SOME[keys] = SpecCompiler(Fixed, _Stripper).compile_fields(EVENT, keys)
    return f


def normalise(event: Mapping[str, Any], kind: str) -> dict[str, Json]:
    """The schema-conformant copy of ``event`` for ``kind``; unknown or content-like values go.

    The result always has every top-level key of the schema (missing ones are ``None``), plus
    ``schema`` (version), ``kind`` and ``stripped`` (how many values were dropped).
    """
    return normalise_exotic(event, kind)[0]


def normalise_exotic(event: Mapping[str, Any], kind: str) -> tuple[dict[str, Json], bool]:
    """:func:`normalise`, and whether the result holds a float
    :func:`audit.canonical.encode_normalised` must
    hand to the reference encoder."""
    if kind not in KINDS:
        raise ValueError("unknown audit event kind")
    s = _Stripper()
    out = _EVENT_FIELDS(s, event) or {}
    out["schema"] = SCHEMA_VERSION
    out["kind"] = kind
    out["stripped"] = s.count
    return out, s.exotic


def normalise_fields(
    event: Mapping[str, Any], keys: tuple[str, ...]
) -> tuple[dict[str, Json], int, bool]:
    """Just ``keys`` (top-level schema fields) of ``event``, normalised as :func:`normalise` does,
    how many values they dropped, and whether they hold an exotic float. ``normalise`` is the
    sum of such parts: the fields are independent, so an event's unchanging part can be
    normalised once and reused."""
    s = _Stripper()
    out = _fields_of(keys)(s, event)
    return out, s.count, s.exotic
