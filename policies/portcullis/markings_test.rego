package portcullis_test.markings

import rego.v1

import data.portcullis_test.lib as t

accredited := [
	{"id": "hosted", "operator": "openai", "model_family": "gpt", "model_origin": "US", "hosting_country": "US", "hosting_region": null, "self_hosted": false, "accredited_to": "official", "retention": {}, "models": ["m"]},
	{"id": "irap", "operator": "microsoft", "model_family": "gpt", "model_origin": "US", "hosting_country": "AU", "hosting_region": "australiaeast", "self_hosted": false, "accredited_to": "protected", "retention": {}, "models": ["m"]},
	{"id": "site", "operator": "self", "model_family": "llama", "model_origin": "US", "hosting_country": "AU", "hosting_region": "AU-ACT", "self_hosted": true, "accredited_to": "secret", "retention": {}, "models": ["m"]},
]

marked(marking, backends) := object.union(
	t.input_for("GB", "private", {"backends": backends}),
	{"request": {"endpoint": "chat", "model": "m", "stream": false, "tools": false, "marking": marking}},
)

decide(marking) := d if {
	d := data.portcullis.decision with input as marked(marking, accredited)
}

test_unmarked_and_official_go_anywhere if {
	decide(null).permitted_backends == ["hosted", "irap", "site"]
	decide("official").permitted_backends == ["hosted", "irap", "site"]
}

test_protected_goes_only_to_backends_accredited_to_it if {
	d := decide("protected")
	d.permitted_backends == ["irap", "site"]
	some r in d.reasons
	r.rule == "portcullis.marking.above_accreditation"
	r.backends == ["hosted"]
	contains(r.message, "PROTECTED")
}

test_top_secret_goes_nowhere_here if {
	d := decide("top_secret")
	d.allow == false
	d.permitted_backends == []
}

test_an_unknown_level_is_denied_everywhere if {
	decide("cosmic").permitted_backends == []
}

test_a_backend_without_accreditation_counts_as_official if {
	old := [object.remove(b, ["accredited_to"]) | some b in accredited]
	d := data.portcullis.decision with input as marked("sensitive", old)
	d.permitted_backends == []
}
