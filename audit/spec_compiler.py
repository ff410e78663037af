"""The audit event's schema specs compiled into straight-line Python.

A spec (:mod:`audit.event`) maps each member of a mapping to a field function ``f(s, value)`` of
a stripper ``s``; :class:`Nested` and :class:`ListOf` mark members that hold a mapping, or a
list of mappings, of another spec. ``audit.stripper.Stripper.fields`` walks a spec — the
reference. The gateway normalises two events per request, and that walk (a dict comprehension
over the spec, a wrapper call per nested mapping) cost more than the checks themselves.
:class:`SpecCompiler` writes one function per spec — the same field functions called in the same
order, the same drop counts, the same memo entries on read-only views — so it is the reference's
result by construction; ``tests/unit/audit/test_compiled.py`` holds it to that on random events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ListOf", "Nested", "SpecCompiler"]

Field = Callable[[Any, Any], Any]  # (stripper, value) -> normalised value
Spec = dict[str, Field]


class Nested:
    """A field that holds a mapping of ``spec``'s fields: ``s.fields(v, spec)``. A value, not a
    lambda, so that :class:`SpecCompiler` can see the spec inside."""

    __slots__ = ("spec",)

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __call__(self, s: Any, v: Any) -> Any:
        return s.fields(v, self.spec)


class ListOf:
    """A field that holds a list of mappings of ``spec``'s fields."""

    __slots__ = ("spec",)

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def __call__(self, s: Any, v: Any) -> list[Any]:
        if not isinstance(v, list | tuple):
            if v is not None:
                s.drop()
            return []
        return [s.fields(x, self.spec) for x in v]


class SpecCompiler:
    """Writes the functions for specs; ``fixed`` is the read-only view type whose normalised
    form is memoised on it (``memo``, keyed by the spec's id), ``stripper`` makes the stripper
    that counts a view's own drops."""

    def __init__(self, fixed: type, stripper: Callable[[], Any]) -> None:
        self.names: dict[int, str] = {}  # id(spec) or id(ListOf) -> function name
        self.env: dict[str, Any] = {
            "Fixed": fixed,
            "Mapping": Mapping,
            "Stripper": stripper,
            "dict": dict,
            "list": list,
            "tuple": tuple,
        }
        self.src: list[str] = []

    def compile(self, spec: Spec) -> Callable[[Any, Any], Any]:
        """``f(s, v)``: what ``s.fields(v, spec)`` returns, with the same effects on ``s``."""
        name = self._spec(spec)
        return self._build()[name]  # type: ignore[no-any-return]

    def compile_fields(self, spec: Spec, keys: tuple[str, ...]) -> Callable[[Any, Any], Any]:
        """``f(s, m)``: ``{k: spec[k](s, m.get(k)) for k in keys}``, written out."""
        calls = {k: self._field(spec[k]) for k in keys}
        items = ", ".join(f"{k!r}: {fn}(s, g({k!r}))" for k, fn in calls.items())
        self.src += ["def some(s, event):", "    g = event.get", f"    return {{{items}}}"]
        return self._build()["some"]  # type: ignore[no-any-return]

    def _field(self, f: Field) -> str:
        if type(f) is Nested:
            return self._spec(f.spec)
        if type(f) is ListOf:
            return self._list_of(f)
        name = f"f{len(self.env)}"
        self.env[name] = f
        return name

    def _list_of(self, f: ListOf) -> str:
        name = self.names.get(id(f))
        if name is None:
            inner = self._spec(f.spec)
            name = self.names[id(f)] = f"list{len(self.names)}"
            self.src += [
                f"def {name}(s, v):",
                "    if type(v) is not list and type(v) is not tuple"
                " and not isinstance(v, list | tuple):",
                "        if v is not None:",
                "            s.count += 1",
                "        return []",
                f"    return [{inner}(s, x) for x in v]",
            ]
        return name

    def _spec(self, spec: Spec) -> str:
        name = self.names.get(id(spec))
        if name is not None:
            return name
        name = self.names[id(spec)] = f"spec{len(self.names)}"
        calls = {k: self._field(f) for k, f in spec.items()}
        keys = f"keys_{name}"
        self.env[keys] = frozenset(spec)
        self.env[f"id_{name}"] = id(spec)
        items = ", ".join(f"{k!r}: {fn}(s, g({k!r}))" for k, fn in calls.items())
        self.src += [
            f"def plain_{name}(s, v):",
            "    ks = v.keys()",
            f"    if not ks <= {keys}:",
            f"        s.count += len(ks - {keys})",
            "    g = v.get",
            f"    return {{{items}}}",
            f"def {name}(s, v):",
            "    if v is None:",
            "        return None",
            "    t = type(v)",
            "    if t is Fixed:",
            f"        hit = v.memo.get(id_{name})",
            "        if hit is None:",
            "            own = Stripper()",
            f"            hit = (plain_{name}(own, v), own.count, own.exotic)",
            f"            v.memo[id_{name}] = hit",
            "        s.count += hit[1]",
            "        if hit[2]:",
            "            s.exotic = True",
            "        return hit[0]",
            "    if t is not dict and not isinstance(v, Mapping):",
            "        s.count += 1",
            "        return None",
            f"    return plain_{name}(s, v)",
        ]
        return name

    def _build(self) -> dict[str, Any]:
        code = compile("\n".join(self.src) + "\n", "<audit.spec_compiler>", "exec")
        exec(code, self.env)  # noqa: S102 - source built above from the fixed specs, no input
        return self.env
