"""Identifier recognizers for every jurisdiction of ``jurisdictions.md`` Part 2, as data.

One module per region, one :class:`~gateway.pii.recognizers.base.IdSpec` per identifier (some
identifiers have two: a checksum-gated one and a context-gated one). Checksums come from
python-stdnum where it has the identifier; hand-written only for Taiwan's national ID, the
Singapore NRIC/FIN and the Australian Medicare number, which it lacks.
"""

from __future__ import annotations

from gateway.pii.recognizers import americas, apac, east_asia, europe
from gateway.pii.recognizers.base import IdSpec, Strength

__all__ = ["ID_ENTITIES", "ID_SPECS", "IdSpec", "Strength"]

ID_SPECS: tuple[IdSpec, ...] = east_asia.SPECS + apac.SPECS + europe.SPECS + americas.SPECS
ID_ENTITIES: frozenset[str] = frozenset(s.entity for s in ID_SPECS)
