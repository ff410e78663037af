"""Who is asking: the principal an API key stands for."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

import pycountry

__all__ = [
    "SECTORS",
    "IPNetwork",
    "Principal",
    "actor_of",
    "address_in",
    "networks_of",
    "parse_jurisdiction",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks_of(blocks: tuple[str, ...] | None) -> tuple[IPNetwork, ...] | None:
    """CIDR blocks as validated and stored (``key_records.validate_networks``), parsed once for
    :func:`address_in`; None stays None (anywhere)."""
    return None if blocks is None else tuple(ipaddress.ip_network(b) for b in blocks)


def address_in(address: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether ``address`` (a client's, as the server saw it) is in one of ``networks``; an
    unknown or unreadable address is in none. An IPv4 client seen as IPv6 (``::ffff:10.1.2.3``)
    is read as IPv4."""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in n for n in networks)


#: The documented sector list (docs/principals.md). Policy keys on these exact strings.
SECTORS: tuple[str, ...] = (
    "government",  # ministries, agencies, departments, local government
    "critical_infrastructure",  # energy, water, telecoms, transport operators
    "education",  # public schools and universities
    "state_owned_enterprise",
    "government_foundation",  # government-endowed foundations and statutory bodies
    "defence",  # armed forces and military personnel
    "defence_contractor",
    "contractor",  # contractors working for the public sector
    "legislature",
    "healthcare",
    "financial",
    "private",
    "individual",
)

_JURISDICTION = re.compile(r"^([A-Z]{2})(?:-([A-Z0-9]{1,3}))?\Z")


def parse_jurisdiction(value: str) -> tuple[str, str | None]:
    """``'au-nsw'`` -> ``('AU', 'AU-NSW')``; ValueError unless an assigned ISO 3166 code.

    Checked against ``pycountry``'s ISO 3166-1 and ISO 3166-2 tables, so ``XX`` or ``AU-ZZZ``
    are refused as well as malformed strings.
    """
    v = value.strip().upper()
    m = _JURISDICTION.match(v)
    if not m:
        raise ValueError("jurisdiction must be ISO 3166-1 alpha-2 or ISO 3166-2, e.g. AU or AU-NSW")
    country = m.group(1)
    if pycountry.countries.get(alpha_2=country) is None:
        raise ValueError(f"{country} is not an ISO 3166-1 alpha-2 country code")
    if m.group(2) is None:
        return country, None
    if pycountry.subdivisions.get(code=v) is None:  # type: ignore[no-untyped-call]
        raise ValueError(f"{v} is not an ISO 3166-2 subdivision code")
    return country, v


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    user: str
    jurisdiction: str  # as given, normalised: "AU" or "AU-NSW"
    sector: str
    team: str | None = None
    roles: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tenant: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)
    # The key's own limits (None: the configured default; 0: none). Not policy facts.
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_parallel: int | None = None  # requests in flight at once
    # The models the key may use, case-folded names or aliases (None: every model policy
    # permits). Narrows what policy permits; never widens it. Not a policy fact.
    models: frozenset[str] | None = None
    # Whose rate and token buckets the key draws on (its rotation chain's first key; None: its
    # own). Not a policy fact.
    buckets: str | None = None
    # The key's own spend budget per period, micro-dollars (None: budgets.key_usd; 0: none).
    # Not a policy fact.
    budget_microusd: int | None = None
    # The period the key's own budget renews on (day, week, month; None: budgets.period). Not a
    # policy fact.
    budget_period: str | None = None
    # The client networks the key may be used from (None: anywhere). Checked when the key
    # authenticates (gateway.keys); not a policy fact.
    networks: tuple[IPNetwork, ...] | None = None

    def reachable_from(self, address: str | None) -> bool:
        """Whether a request from ``address`` (the client's, as the server saw it after any
        trusted proxy) may use this key. A key with networks refuses an unknown address."""
        return self.networks is None or address_in(address, self.networks)

    @property
    def country(self) -> str:
        return self.jurisdiction.split("-", 1)[0]

    @property
    def subdivision(self) -> str | None:
        return self.jurisdiction if "-" in self.jurisdiction else None

    @property
    def via_sso(self) -> bool:
        """A console session from single sign-on (gateway.sso), not a key."""
        return self.key_id.startswith("sso:")

    def policy_view(self) -> dict[str, Any]:
        """The principal as the policy engine sees it (the decision contract's ``principal``)."""
        return {
            "key_id": self.key_id,
            "user": self.user,
            "team": self.team,
            "tenant": self.tenant,
            "jurisdiction": self.jurisdiction,
            "country": self.country,
            "subdivision": self.subdivision,
            "sector": self.sector,
            "roles": list(self.roles),
            "tags": list(self.tags),
        }


def actor_of(principal: Principal | None) -> str:
    """Who acted, for the audit trail: ``key:<key id>``, ``sso:<user>`` for a console session
    from single sign-on, or ``admin-token`` (no principal: the admin API's own token)."""
    if principal is None:
        return "admin-token"
    return principal.key_id if principal.via_sso else f"key:{principal.key_id}"
