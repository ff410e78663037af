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
from typing import Any, cast

from audit.canonical import PLAIN_FLOAT_MAX, PLAIN_FLOAT_MIN
from audit.shapes import (
    is_identifier,
    is_terms_url,
    looks_personal,
    not_personal,
    plain_model_name,
    plain_request_id,
)
from audit.spec_compiler import ListOf, Nested, SpecCompiler

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "Fixed",
    "normalise",
    "normalise_exotic",
    "normalise_fields",
]

SCHEMA_VERSION = 1
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
_SHORT = 200


Json = Any


class Fixed(dict[str, Any]):
    """A read-only mapping whose audit form is computed once and kept on the object.

    The gateway hands the same view of a principal, a backend or a decision to every event it
    concerns; wrapped in ``Fixed`` it is normalised on first use only. Its values must not be
    changed either (use tuples for lists): the memo would not see it. Copies are plain dicts.
    """

    __slots__ = ("memo",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo: dict[int, tuple[Any, int, bool]] = {}

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a Fixed mapping is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))  # a copy (copy, deepcopy, pickle) is a plain, mutable dict

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


def _encodes(v: str) -> bool:
    """Whether ``v`` is UTF-8 text (a lone surrogate is not, and would stop the entry's canonical
    encoding: the whole record would fail, and with it the request, fail closed)."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Stripper:
    __slots__ = ("count", "exotic")

    def __init__(self) -> None:
        self.count = 0
        self.exotic = False  # a float the fast encoder would spell differently

    def once(self, v: Fixed, key: int, compute: Callable[[_Stripper, Any], Json]) -> Json:
        """``compute(v)`` for a :class:`Fixed` value, from its memo after the first time."""
        hit = v.memo.get(key)
        if hit is None:
            s = _Stripper()
            hit = (compute(s, v), s.count, s.exotic)
            v.memo[key] = hit
        self.count += hit[1]
        self.exotic = self.exotic or hit[2]
        return hit[0]

    def drop(self) -> None:
        self.count += 1

    # The exact-type tests first: they are the common case and much cheaper than isinstance
    # against the abstract Mapping; subclasses take the general test after them.
    def ident(self, v: Any) -> str | None:
        if type(v) is str:
            if is_identifier(v):
                return v
        elif v is None:
            return None
        elif isinstance(v, str) and is_identifier(v):
            return v
        self.count += 1
        return None

    def label(self, v: Any) -> str | None:
        """Short free label the client may choose (a model name): no text, no personal shapes."""
        if v is None:
            return None
        if (
            isinstance(v, str)
            and len(v) <= _SHORT
            and "\n" not in v
            and len(v.split()) <= 3
            and not looks_personal(v)
            and (v.isascii() or _encodes(v))
        ):
            return v
        self.drop()
        return None

    def _kept(self, v: Any, keep: Callable[[str], bool]) -> str | None:
        """An identifier that ``keep`` also accepts; anything else is dropped."""
        out = self.ident(v)
        if out is not None and not keep(out):
            self.drop()
            return None
        return out

    def untrusted(self, v: Any) -> str | None:
        """An identifier from the client or an error path: no personal shapes either."""
        return self._kept(v, not_personal)

    def request_id(self, v: Any) -> str | None:
        """An identifier the caller may have chosen: :func:`audit.shapes.plain_request_id`."""
        return self._kept(v, plain_request_id)

    def model(self, v: Any) -> str | None:
        """A model name: :meth:`untrusted`, except that a snapshot date is not a digit run."""
        return self._kept(v, plain_model_name)

    def url(self, v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, str) and is_terms_url(v):
            return v
        self.drop()
        return None

    def ids(self, v: Any) -> list[str]:
        if not isinstance(v, list | tuple):
            if v is not None:
                self.drop()
            return []
        ident = self.ident
        return [s for s in map(ident, v) if s is not None]

    def boolean(self, v: Any) -> bool | None:
        if v is None or isinstance(v, bool):
            return v
        self.drop()
        return None

    def number(self, v: Any) -> int | float | None:
        t = type(v)
        if t is int or v is None:
            return cast(int | None, v)
        if t is float or (isinstance(v, int | float) and not isinstance(v, bool)):
            if isinstance(v, float):
                if v != v:  # NaN
                    self.drop()
                    return None
                if v and not PLAIN_FLOAT_MIN <= abs(v) < PLAIN_FLOAT_MAX:
                    self.exotic = True
            return cast(int | float, v)
        self.drop()
        return None

    def counts(self, v: Any) -> dict[str, int]:
        if type(v) is not dict and not isinstance(v, Mapping):
            if v is not None:
                self.drop()
            return {}
        out: dict[str, int] = {}
        for k, n in v.items():
            key = self.ident(k)
            if key is not None and (
                type(n) is int or (isinstance(n, int) and not isinstance(n, bool))
            ):
                out[key] = n
            elif key is not None:
                self.drop()
        return out

    def numbers(self, v: Any) -> dict[str, int | float | None]:
        if type(v) is not dict and not isinstance(v, Mapping):
            if v is not None:
                self.drop()
            return {}
        out: dict[str, int | float | None] = {}
        for k, n in v.items():
            key = self.ident(k)
            if key is not None:
                out[key] = self.number(n)
        return out

    def scalars(self, v: Any) -> dict[str, Json]:
        """A flat map of identifiers to short scalars (obligations, deployment facts)."""
        if type(v) is Fixed:
            return self.once(v, 0, _Stripper._scalars)  # type: ignore[no-any-return]
        return self._scalars(v)

    def _scalars(self, v: Any) -> dict[str, Json]:
        if type(v) is not dict and not isinstance(v, Mapping):
            if v is not None:
                self.drop()
            return {}
        out: dict[str, Json] = {}
        for k, x in v.items():
            key = self.ident(k)
            if key is None:
                continue
            if x is None or isinstance(x, bool | int | float):
                out[key] = self.number(x) if isinstance(x, float) else x
            elif isinstance(x, str):
                s = self.ident(x)
                if s is not None:
                    out[key] = s
            else:
                self.drop()
        return out

    def fields(
        self, v: Any, spec: Mapping[str, Callable[[_Stripper, Any], Json]]
    ) -> dict[str, Json] | None:
        if v is None:
            return None
        t = type(v)
        if t is Fixed:
            return self.once(v, id(spec), lambda s, x: s._fields(x, spec))  # type: ignore[no-any-return]
        if t is not dict and not isinstance(v, Mapping):
            self.drop()
            return None
        return self._fields(v, spec)

    def _fields(self, v: Mapping[str, Any], spec: Mapping[str, Field]) -> dict[str, Json]:
        self.count += len(v.keys() - spec.keys())
        return {k: f(self, v.get(k)) for k, f in spec.items()}


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
    "obligations": _S.scalars,
}
PII: Spec = {
    "counts": _S.counts,
    "actions": _pii_actions,
    "output": _S.counts,
    "uninspectable": _S.ids,  # content kinds the detector could not read (image_url, token_ids)
    "insecure": _S.ids,  # insecure switches this request went through (pii.enabled:false, ...)
}
DIGESTS: Spec = {"key_id": _S.ident, "prompt": _digest, "answer": _digest}
ATTEMPT: Spec = {"backend": _S.ident, "outcome": _S.ident, "status": _S.number}
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
