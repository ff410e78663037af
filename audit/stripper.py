"""What normalising an audit event is made of: :class:`Fixed` (a read-only view normalised once)
and the stripper whose checks keep a field or drop it, counting what it dropped. The schema
that says which check each field gets is :mod:`audit.event`'s."""

from __future__ import annotations

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

__all__ = ["Fixed", "Json", "Stripper"]

Json = Any

_SHORT = 200


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


class Stripper:
    __slots__ = ("count", "exotic")

    def __init__(self) -> None:
        self.count = 0
        self.exotic = False  # a float the fast encoder would spell differently

    def once(self, v: Fixed, key: int, compute: Callable[[Stripper, Any], Json]) -> Json:
        """``compute(v)`` for a :class:`Fixed` value, from its memo after the first time."""
        hit = v.memo.get(key)
        if hit is None:
            s = Stripper()
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
            return self.once(v, 0, Stripper._scalars)  # type: ignore[no-any-return]
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
        self, v: Any, spec: Mapping[str, Callable[[Stripper, Any], Json]]
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

    def _fields(
        self, v: Mapping[str, Any], spec: Mapping[str, Callable[[Stripper, Any], Json]]
    ) -> dict[str, Json]:
        self.count += len(v.keys() - spec.keys())
        return {k: f(self, v.get(k)) for k, f in spec.items()}
