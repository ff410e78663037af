# METADATA
# title: Portcullis decision, contract version 1
# description: >-
#   The entrypoint: data.portcullis.decision. Gathers the reasons of every jurisdiction package
#   (data.portcullis.jurisdiction.<cc>) and every overlay package (data.portcullis.overlay.<name>),
#   removes the backends any deny reason names (a deny anywhere wins), and gives the PII action
#   per permitted backend (the strictest applicable action wins). Messages and citations come
#   from data (no engine reads rego.metadata). Schema: policies/schema/decision-output.v1.json.
# entrypoint: true
package portcullis

import rego.v1

import data.portcullis.lib

# METADATA
# title: Candidates
# description: The ids of the candidate backends of the input.
candidates := {b.id | some b in input.backends}

# METADATA
# title: Input checks
# description: An input that is not contract v1 is denied (fail closed), never guessed at.
base_reasons contains {
	"rule": "portcullis.input.invalid",
	"effect": "deny",
	"message": "The policy input is not a valid version-1 decision input.",
	"backends": null,
	"citation": null,
} if not lib.valid_input

base_reasons contains {
	"rule": "portcullis.bundle.incomplete",
	"effect": "deny",
	"message": "The policy bundle was loaded without its facts; build it with `portcullis policy bundle`.",
	"backends": null,
	"citation": null,
} if not lib.facts_loaded

base_reasons contains {
	"rule": "portcullis.input.no_candidates",
	"effect": "deny",
	"message": "No backend serves this model for this endpoint.",
	"backends": null,
	"citation": null,
} if {
	lib.valid_input
	count(candidates) == 0
}

base_reasons contains {
	"rule": "portcullis.overlay.invalid",
	"effect": "deny",
	"message": "An organisation overlay gives a PII action or reason this contract does not know.",
	"backends": null,
	"citation": null,
} if {
	some e in relax_entries | tighten_entries
	not data.facts.pii.strictness[e.action]
}

# METADATA
# title: Classification levels
# description: Security classification levels, lowest first (gateway/markings.py reads a request's marking; each backend declares accredited_to).
marking_rank := {"official": 0, "sensitive": 1, "protected": 2, "secret": 3, "top_secret": 4}

# A level this contract does not know ranks above every backend: denied everywhere (fail closed).
rank_of_marking(m) := object.get(marking_rank, m, 5)

# A backend without an accreditation (an input from before markings) is cleared for official only.
rank_of_backend(b) := object.get(marking_rank, object.get(b, "accredited_to", "official"), 0)

# METADATA
# title: Classification markings
# description: A request marked above a backend's accreditation is denied that backend.
base_reasons contains {
	"rule": "portcullis.marking.above_accreditation",
	"effect": "deny",
	"message": sprintf(
		"The request carries the security classification marking %s; it may go only to backends accredited to that level.",
		[upper(replace(input.request.marking, "_", " "))],
	),
	"backends": sort(ids),
	"citation": null,
} if {
	is_string(input.request.marking)
	ids := [b.id | some b in input.backends; rank_of_backend(b) < rank_of_marking(input.request.marking)]
	count(ids) > 0
}

# METADATA
# title: Jurisdiction reasons
# description: >-
#   The reasons of the jurisdiction packages with an applicable action
#   (data.portcullis.jurisdiction.<cc>.reasons). When nothing applies no package is evaluated,
#   which keeps the common decision cheap; a package's reasons derive from lib.applicable.
jurisdiction_reasons contains r if {
	some pkg in {a.package | some a in lib.applicable}
	some r in data.portcullis.jurisdiction[pkg].reasons
}

# METADATA
# title: Overlay reason
# description: An overlay's deny/warn/info entry normalised to a contract reason.
overlay_reason(r, effect) := {
	"rule": r.rule,
	"effect": effect,
	"message": object.get(r, "message", r.rule),
	"backends": sorted_or_null(object.get(r, "backends", null)),
	"citation": object.get(r, "citation", null),
}

sorted_or_null(x) := sort(x) if is_array(x)

sorted_or_null(x) := null if x == null

# METADATA
# title: Overlay reasons
# description: The deny, warn and info entries of every overlay package (data.portcullis.overlay.<name>).
overlay_reasons contains overlay_reason(r, "deny") if {
	some r in data.portcullis.overlay[_].deny
}

overlay_reasons contains overlay_reason(r, "warn") if {
	some r in data.portcullis.overlay[_].warn
}

overlay_reasons contains overlay_reason(r, "info") if {
	some r in data.portcullis.overlay[_].info
}

# METADATA
# title: All reasons
# description: Built-in, jurisdiction and overlay reasons together.
all_reasons := (base_reasons | jurisdiction_reasons) | overlay_reasons

# METADATA
# title: Denials
# description: Every deny reason: a deny anywhere wins.
denials := {r | some r in all_reasons; r.effect == "deny"}

denied_all if {
	some r in denials
	r.backends == null
}

denied contains id if {
	some r in denials
	is_array(r.backends)
	some id in r.backends
}

# METADATA
# title: Permitted backends
# description: Candidates no deny reason names (none when a deny names every backend).
permitted_set := {id | some id in candidates; not id in denied; not denied_all}

# PII: overlays' entries; see lib for the default (Axiom 6).
# METADATA
# title: PII relaxations
# description: Overlay entries that replace the Axiom 6 default for a backend and entity type.
relax_entries contains e if {
	some e in data.portcullis.overlay[_].pii_relax
}

# METADATA
# title: PII tightenings
# description: Overlay entries that raise the action for a backend and entity type.
tighten_entries contains e if {
	some e in data.portcullis.overlay[_].pii_tighten
}

named_entities(b) := {e.entity | some e in relax_entries | tighten_entries; lib.matches_backend(e, b)} | {"*"}

relax_for(b, ent) := {e.action | some e in relax_entries; lib.matches_backend(e, b); e.entity == ent}

base_action(b, ent) := lib.strictest(relax_for(b, ent)) if {
	count(relax_for(b, ent)) > 0
} else := lib.strictest(relax_for(b, "*")) if {
	count(relax_for(b, "*")) > 0
} else := lib.default_action(b)

tightened(b, ent) := {e.action | some e in tighten_entries; lib.matches_backend(e, b); e.entity in {ent, "*"}}

# METADATA
# title: PII action
# description: The strictest of the base action (relaxed or default) and every matching tightening.
pii_action(b, ent) := lib.strictest({base_action(b, ent)} | tightened(b, ent))

# Without overlay PII entries every permitted backend gets its default (the common case, fast).
# METADATA
# title: PII actions per permitted backend
# description: Entity type -> action, '*' the default for types not named.
pii_actions := {b.id: {"*": lib.default_action(b)} |
	some b in input.backends
	b.id in permitted_set
} if {
	count(relax_entries) == 0
	count(tighten_entries) == 0
} else := {b.id: {ent: pii_action(b, ent) | some ent in named_entities(b)} |
	some b in input.backends
	b.id in permitted_set
}

obligation_entries contains e if {
	some e in data.portcullis.overlay[_].obligations
}

retention_rank := max({0} | {i |
	some e in obligation_entries
	some i, c in data.facts.pii.retention_classes
	c == e.retention_class
})

# METADATA
# title: System prompts
# description: Ids of the configured system prompts any overlay asks the gateway to add.
system_prompts := sort([id | some id in {e.system_prompt | some e in obligation_entries; is_string(e.system_prompt)}])

# METADATA
# title: Obligations
# description: content_capture if any overlay asks; the strictest retention class requested; the system prompts asked for; redact_new_pii (the answer's personal data the prompt did not hold replaced, not only counted) if any overlay asks; strict_pii (the prompt read as strictly as the detector can) if any overlay asks.
obligations := {
	"content_capture": count([e | some e in obligation_entries; e.content_capture == true]) > 0,
	"retention_class": data.facts.pii.retention_classes[retention_rank],
	"system_prompts": system_prompts,
	"redact_new_pii": count([e | some e in obligation_entries; e.redact_new_pii == true]) > 0,
	"strict_pii": count([e | some e in obligation_entries; e.strict_pii == true]) > 0,
}

# METADATA
# title: Decision v1
# description: The document the engines return (schema policies/schema/decision-output.v1.json).
decision := {
	"version": "1",
	"allow": count(permitted_set) > 0,
	"permitted_backends": sort([id | some id in permitted_set]),
	"pii_actions": pii_actions,
	"reasons": [r | some r in all_reasons],
	"obligations": obligations,
	"bundle_revision": data.bundle.revision,
}
