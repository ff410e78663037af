# Helpers for the pack's tests (loaded only with the tests) and tests of the library itself.
package portcullis_test.lib

import rego.v1

import data.portcullis.lib

retention := {"days": null, "trains_on_inputs": null, "zero_data_retention": false, "terms_url": null}

backends := [
	{"id": "deepseek-hosted", "operator": "deepseek", "model_family": "deepseek", "model_origin": "CN", "hosting_country": "CN", "hosting_region": null, "self_hosted": false, "retention": retention, "models": ["deepseek-chat"]},
	{"id": "deepseek-self", "operator": "self", "model_family": "deepseek", "model_origin": "CN", "hosting_country": "AU", "hosting_region": "AU-NSW", "self_hosted": true, "retention": retention, "models": ["deepseek-chat"]},
	{"id": "openai", "operator": "openai", "model_family": "gpt", "model_origin": "US", "hosting_country": "US", "hosting_region": null, "self_hosted": false, "retention": retention, "models": ["gpt-4o"]},
	{"id": "azure-eu", "operator": "microsoft", "model_family": "gpt", "model_origin": "US", "hosting_country": "SE", "hosting_region": "eu-sweden", "self_hosted": false, "retention": retention, "models": ["gpt-4o"]},
]

all_ids := ["azure-eu", "deepseek-hosted", "deepseek-self", "openai"]

# input_for("AU-NSW", "government", {"now": ..., "stance": ..., "team": ..., "tags": [...], "phase": ..., "pii": ...})
input_for(jurisdiction, sector, opts) := {
	"version": "1",
	"phase": object.get(opts, "phase", "route"),
	"now": object.get(opts, "now", "2026-11-29T03:40:00Z"),
	"principal": {
		"key_id": "key-1", "user": "u1", "team": object.get(opts, "team", null), "tenant": "default",
		"jurisdiction": jurisdiction, "country": substring(jurisdiction, 0, 2),
		"subdivision": subdivision(jurisdiction), "sector": sector, "roles": [], "tags": object.get(opts, "tags", []),
	},
	"request": {"endpoint": "chat", "model": "m", "stream": false, "tools": false},
	"backends": object.get(opts, "backends", backends),
	"pii": object.get(opts, "pii", null),
	"deployment": {"self_hosted_stance": object.get(opts, "stance", "cautious")},
}

subdivision(j) := j if contains(j, "-")

subdivision(j) := null if not contains(j, "-")

at(day) := sprintf("%sT12:00:00Z", [day])

action(id) := a if {
	some a in data.facts.actions
	a.id == id
}

# The reason an action gives, built from its facts (message and citation live in data) by the
# library's reference definition, not the loader's precomputed templates.
reason(id, part, effect, ids) := object.union(lib.template(action(id), part), {"effect": effect, "backends": ids})

# A decision with its reasons as a set (their order is not part of the contract).
decide(jurisdiction, sector, opts) := object.union(d, {"reasons": {r | some r in d.reasons}}) if {
	d := data.portcullis.decision with input as input_for(jurisdiction, sector, opts)
		with data.bundle.revision as "test"
}

pii(ids) := {id: {"*": default_for(id)} | some id in ids}

default_for("deepseek-self") := "allow"

default_for(id) := "pseudonymise" if id != "deepseek-self"

obligations := {"content_capture": false, "retention_class": "standard", "system_prompts": [], "redact_new_pii": false, "strict_pii": false}

expect(permitted, reasons) := {
	"version": "1",
	"allow": count(permitted) > 0,
	"permitted_backends": permitted,
	"pii_actions": pii(permitted),
	"reasons": reasons,
	"obligations": obligations,
	"bundle_revision": "test",
}

test_today_is_the_utc_day if {
	lib.today == "2025-02-04" with input as {"now": "2025-02-04T23:59:59Z"}
}

test_invalid_input_denies_everything if {
	d := data.portcullis.decision with input as {"version": "2", "backends": backends}
	d.allow == false
	d.permitted_backends == []
	some r in d.reasons
	r.rule == "portcullis.input.invalid"
}

test_no_candidates_is_a_denial if {
	d := decide("AU", "private", {"backends": []})
	d.allow == false
	some r in d.reasons
	r.rule == "portcullis.input.no_candidates"
}

test_unknown_stance_is_cautious if {
	d := decide("AU", "government", {"stance": "whatever"})
	d.permitted_backends == ["azure-eu", "openai"]
}

test_private_principal_gets_default_pii_actions if {
	decide("GB", "private", {}) == expect(all_ids, set())
}

# The loader's precomputed reason templates equal the pack's own definition.
test_loader_templates_match_lib_template if {
	every place, actions in data.facts.by_place {
		every a in actions {
			every part in ["hosted", "weights", "weights_cautious", "weights_permitted"] {
				a.templates[part] == lib.template(a, part)
			}
		}
	}
}

# The loader's precomputed weights parts equal the pack's reference definition, per stance.
test_loader_weights_parts_match_weights_outcome if {
	every stance in ["cautious", "permit"] {
		every place, actions in data.facts.by_place {
			every a in actions {
				outcome_matches(a, stance)
			}
		}
	}
}

outcome_matches(a, stance) if {
	a.weights_parts[stance] == lib.weights_outcome(a) with input.deployment.self_hosted_stance as stance
}

outcome_matches(a, stance) if {
	not a.weights_parts[stance]
	not lib.weights_outcome(a) with input.deployment.self_hosted_stance as stance
}

test_missing_facts_deny_everything if {
	d := data.portcullis.decision with input as input_for("GB", "private", {}) with data.facts.by_place as {}
	d.allow == false
	d.permitted_backends == []
	some r in d.reasons
	r.rule == "portcullis.bundle.incomplete"
}
