package portcullis_test.overlay.eu_personal_data

import rego.v1

import data.portcullis_test.lib as t

test_eu_personal_data_only_eu_or_adequate if {
	inp := t.input_for("FR", "private", {"phase": "final", "pii": {"entities": {"PERSON": 1}}})
	d := data.portcullis.decision with input as inp
	d.permitted_backends == ["azure-eu"]
	some r in d.reasons
	r.rule == "overlay.eu_personal_data"
	r.backends == ["deepseek-hosted", "deepseek-self", "openai"]
}

test_route_phase_denies_nothing if {
	d := data.portcullis.decision with input as t.input_for("FR", "private", {})
	d.permitted_backends == ["azure-eu", "deepseek-hosted", "deepseek-self", "openai"]
}

test_non_eu_principal_unaffected if {
	inp := t.input_for("GB", "private", {"phase": "final", "pii": {"entities": {"PERSON": 1}}})
	d := data.portcullis.decision with input as inp
	d.permitted_backends == ["azure-eu", "deepseek-hosted", "deepseek-self", "openai"]
}
