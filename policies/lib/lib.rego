# METADATA
# title: Shared library of the Portcullis jurisdiction pack
# description: >-
#   How a government action (policies/data/actions.json) applies to a request: where and whom
#   it covers, when it is in effect, and which candidate backends it reaches. Backends are told
#   apart by their facts (operator, model_family, self_hosted), never by name.
package portcullis.lib

import rego.v1

# METADATA
# title: Evaluation day
# description: The UTC day of input.now. Actions are dated to the day, so the decision depends on now only through this value (the gateway's decision cache relies on it).
today := substring(input.now, 0, 10)

# METADATA
# title: Self-hosted stance
# description: The deployment's stance on texts ambiguous about self-hosted weights; anything but permit is cautious.
stance := s if {
	s := input.deployment.self_hosted_stance
	s == "permit"
} else := "cautious"

# METADATA
# title: Input check
# description: The input is contract v1 with an RFC 3339 UTC time, a principal and a list of backends.
valid_input if {
	input.version == "1"
	is_string(input.now)
	endswith(input.now, "Z")
	time.parse_rfc3339_ns(input.now)
	is_string(input.principal.country)
	is_string(input.principal.sector)
	is_array(input.backends)
}

# METADATA
# title: Facts loaded
# description: >-
#   The loader's index of the actions is present. An engine given the policies/ directory
#   without the loader (e.g. OPA pointed at the folder) has no facts and must deny, not allow.
facts_loaded if count(data.facts.by_place) > 0

# METADATA
# title: Applicable actions
# description: >-
#   The actions that apply to this principal today. Place: a national action covers the country
#   and all its subdivisions (cautious reading), a sub-national action only that subdivision,
#   EU the member states. Sector: the action's scopes mapped onto principal sectors
#   (docs/policy.md). Time: from the effective date (or the earliest date the sources allow)
#   until lifted. data.facts.by_place is an index of data.facts.actions built when the bundle is
#   loaded (gateway/policy/bundle.py): per jurisdiction, each action with "start" ("" when no
#   date is established: in force), "end" ("~" when not lifted) and "sector_set".
places contains input.principal.country

places contains input.principal.subdivision if is_string(input.principal.subdivision)

places contains "EU" if input.principal.country in data.facts.regions.eu_members

applicable contains a if {
	valid_input
	some p in places
	some a in data.facts.by_place[p]
	a.start <= today
	today < a.end
	covers_sector(a)
}

covers_sector(a) if a.sector_set["*"]

covers_sector(a) if a.sector_set[input.principal.sector]

# METADATA
# title: Hosted service of the subject
# description: A backend run by the subject's operator, not self-hosted; operator * means any hosted AI service.
hosted_backend(a, b) if {
	not b.self_hosted
	a.subject.operator == "*"
}

hosted_backend(a, b) if {
	not b.self_hosted
	b.operator == a.subject.operator
}

# METADATA
# title: Weights of the subject
# description: A backend running the subject's model family that the subject's operator does not run (self-hosted, or a third party).
weights_backend(a, b) if {
	a.subject.model_family != null
	b.model_family == a.subject.model_family
	b.operator != a.subject.operator
}

# METADATA
# title: Citation
# description: Authority, instrument, stated date, source URL, confidence and action id, from data.
citation(a) := {
	"authority": a.authority,
	"instrument": a.instrument,
	"date": a.effective_date,
	"url": a.url,
	"confidence": a.confidence,
	"action_id": a.id,
}

# METADATA
# title: Reason
# description: >-
#   One reason of the contract: rule id <package>.<action id>.<part>, message and citation from
#   data (data.facts.by_place[_][_].templates[part], precomputed at load from the action's
#   fields exactly as `citation` and `template` below describe), effect and backends reached.
reason(a, part, effect, ids) := object.union(a.templates[part], {"effect": effect, "backends": ids})

# The reason template of one part, as the loader precomputes it (kept here as the reference
# definition; tests check the loader's templates against it).
template(a, part) := {
	"rule": sprintf("%s.%s.%s", [a.package, a.id, part]),
	"message": a.messages[part],
	"citation": citation(a),
}

# (hosted_backend and weights_backend inlined: function calls dominate regorus's cost)
hosted_ids(a) := sort([b.id |
	some b in input.backends
	not b.self_hosted
	a.subject.operator in {"*", b.operator}
])

weights_ids(a) := sort([b.id |
	some b in input.backends
	b.model_family == a.subject.model_family
	b.operator != a.subject.operator
])

# METADATA
# title: Findings of one action
# description: >-
#   hosted: the action reaches the operator's hosted service. weights: it covers the weights
#   explicitly. weights_cautious / weights_permitted: a binding text ambiguous about weights,
#   decided by the deployment's self_hosted_stance (default cautious = deny).
#   Only called for applicable actions (see `applicable`).
reasons(a) := hosted_reasons(a) | weights_reasons(a)

hosted_reasons(a) := {reason(a, "hosted", a.effect, ids) |
	a.hosted
	ids := hosted_ids(a)
	count(ids) > 0
}

weights_reasons(a) := {reason(a, part, effect, ids) |
	[part, effect] := a.weights_parts[stance] # precomputed at load: weights_outcome below
	ids := weights_ids(a)
	count(ids) > 0
}

# The reference definition of the weights part per stance (the loader precomputes it into
# a.weights_parts; a test checks the two agree).
weights_outcome(a) := ["weights", a.effect] if a.weights == "covered"

weights_outcome(a) := ["weights_cautious", "deny"] if {
	a.weights == "ambiguous"
	a.effect == "deny"
	stance == "cautious"
}

weights_outcome(a) := ["weights_permitted", "info"] if {
	a.weights == "ambiguous"
	a.effect == "deny"
	stance == "permit"
}

# METADATA
# title: Reasons of one package
# description: Reasons of the applicable actions of one pack package (folder policies/<package>/).
package_reasons(pkg) := {r |
	some a in applicable
	a.package == pkg
	some r in reasons(a)
}

# METADATA
# title: PII actions
# description: >-
#   Axiom 6: pseudonymise every entity type for a backend that is not self-hosted, allow on a
#   self-hosted one. Overlays relax the default (pii_relax) or tighten (pii_tighten); the
#   strictest applicable action wins.
default_action(b) := data.facts.pii.default_self_hosted if b.self_hosted == true

default_action(b) := data.facts.pii.default_hosted if not b.self_hosted == true

# METADATA
# title: Strictest PII action
# description: The strictest of a set of PII actions (block > redact > hash > mask > pseudonymise > allow).
strictest(actions) := data.facts.pii.by_strictness[max({data.facts.pii.strictness[x] | some x in actions})]

# METADATA
# title: Overlay entry scope
# description: An overlay PII entry applies to every backend (backends null or absent) or to the listed ones.
matches_backend(entry, b) if object.get(entry, "backends", null) == null

matches_backend(entry, b) if b.id in object.get(entry, "backends", [])
